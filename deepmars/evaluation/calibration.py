"""Calibration: expected calibration error, reliability bins, and temperature scaling.

"Confidence >= 0.9" should mean about 90% right. Expected calibration error (ECE) measures the gap
(definition below); temperature scaling (Guo et al., 2017) divides the logits by one scalar T,
fitted on validation logits by minimising negative log-likelihood, which changes confidences but
never the predicted class.

ECE definition used here (the standard one, Guo et al. 2017): the confidence of an image is its top
probability; the interval [0, 1] is cut into 15 equal-width bins B_1..B_15, B_m = ((m-1)/15, m/15]
(a confidence of exactly 0 goes in B_1); then

    ECE = sum over non-empty bins of |B_m| / N * |accuracy(B_m) - mean confidence(B_m)|

where accuracy(B_m) is the fraction of images in B_m whose top class is the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deepmars.errors import DataError
from deepmars.evaluation.inputs import check_predictions
from deepmars.evaluation.metrics import predicted_classes

ECE_BINS = 15
# Temperatures are searched in this range; a fit that reaches an end is clamped there.
T_MIN, T_MAX = 0.05, 20.0
_LOG_FLOOR = 1e-12


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, computed stably in float64."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.size == 0:
        return np.zeros((0, z.shape[1] if z.ndim == 2 else 0))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities, usable as logits (softmax is unchanged by a per-row constant).

    Lets temperature scaling run when only probabilities were saved; probabilities of 0 are
    floored at 1e-12 so their logs stay finite.
    """
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _LOG_FLOOR, None))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities softmax(logits / T); T > 1 softens, T < 1 sharpens, argmax unchanged."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    return softmax(logits, temperature)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per equal-width confidence bin: image count, accuracy and mean confidence (NaN when empty)."""

    edges: np.ndarray
    count: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error from these bins; NaN when there are no images."""
        n = int(self.count.sum())
        if n == 0:
            return math.nan
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.count[filled] / n * gaps))


def reliability_bins(probs: np.ndarray, targets: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Group images by top probability into `n_bins` equal-width bins ((lo, hi], first bin also holds 0)."""
    probs, targets = check_predictions(probs, targets)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    count = np.zeros(n_bins, dtype=np.int64)
    acc = np.full(n_bins, math.nan)
    conf_mean = np.full(n_bins, math.nan)
    if targets.size:
        confidence = probs.max(axis=1)
        correct = (predicted_classes(probs) == targets).astype(np.float64)
        # Number of interior edges strictly below the confidence: bin (lo, hi] holds hi itself.
        which = np.searchsorted(edges[1:-1], confidence, side="left")
        count = np.bincount(which, minlength=n_bins).astype(np.int64)
        filled = count > 0
        acc[filled] = np.bincount(which, weights=correct, minlength=n_bins)[filled] / count[filled]
        conf_mean[filled] = np.bincount(which, weights=confidence, minlength=n_bins)[filled] / count[filled]
    return ReliabilityBins(edges, count, acc, conf_mean)


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE with `n_bins` equal-width bins (definition in the module docstring); NaN for an empty split."""
    return reliability_bins(probs, targets, n_bins).ece


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean -log softmax(logits / T)[target]; the quantity temperature scaling minimises."""
    z, targets = check_predictions(logits, targets)
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(targets.size), targets]))


def _nll_slope(z: np.ndarray, targets: np.ndarray, beta: float) -> float:
    """d/d(beta) of the mean NLL of softmax(beta * z): E_p[z] - z_target, averaged. Increasing in beta."""
    p = softmax(z * beta)
    return float(np.mean((p * z).sum(axis=1) - z[np.arange(targets.size), targets]))


def fit_temperature(logits: np.ndarray, targets: np.ndarray, t_min: float = T_MIN, t_max: float = T_MAX) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) on (validation) logits and targets.

    With beta = 1/T the NLL is convex in beta (its slope E_p[z] - z_target is increasing), so the
    optimum is the root of the slope, found by bisection on beta in [1/t_max, 1/t_min]: deterministic,
    no random start, no external optimiser. If the optimum lies outside the range (e.g. perfectly
    separated training logits, which want T -> 0) the nearer end of the range is returned.
    """
    z, targets = check_predictions(logits, targets)
    if targets.size == 0:
        raise DataError("cannot fit a temperature on an empty split")
    lo, hi = 1.0 / t_max, 1.0 / t_min
    if _nll_slope(z, targets, lo) >= 0:
        return t_max
    if _nll_slope(z, targets, hi) <= 0:
        return t_min
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _nll_slope(z, targets, mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * hi:
            break
    return float(1.0 / (0.5 * (lo + hi)))
