"""Accuracy against abstention as a confidence threshold rises (the Atlas's confidence slider).

An image is kept when its top probability is >= the threshold and abstained on otherwise; the
curve gives, per threshold, the accuracy on kept images and the fraction abstained. The paper
quotes the point at 0.9 (MSL val 94.3% at 41% abstained), so that point has its own accessor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepmars.evaluation.inputs import check_predictions
from deepmars.evaluation.metrics import predicted_classes
from deepmars.evaluation.tables import write_csv

# 0.00, 0.01, ..., 0.99, rounded so that 0.9 on the grid is the float literal 0.9.
DEFAULT_THRESHOLDS = np.round(np.arange(100) * 0.01, 2)
# Thresholds shown in the report's table; 0.9 is the paper's operating point.
REPORT_THRESHOLDS = (0.5, 0.7, 0.9, 0.95)
PAPER_THRESHOLD = 0.9


@dataclass(frozen=True)
class ThresholdCurve:
    """Per threshold: accuracy on kept images (NaN if none kept), fraction abstained, count kept."""

    thresholds: np.ndarray
    accuracy: np.ndarray
    abstained: np.ndarray
    kept: np.ndarray
    total: int

    def index(self, threshold: float) -> int:
        """Position of `threshold` on the grid; ValueError if it is not one of the curve's thresholds."""
        hits = np.flatnonzero(np.isclose(self.thresholds, threshold, rtol=0.0, atol=1e-9))
        if hits.size == 0:
            raise ValueError(f"threshold {threshold} is not on this curve's grid")
        return int(hits[0])

    def at(self, threshold: float) -> tuple[float, float]:
        """(accuracy on kept images, fraction abstained) at `threshold`."""
        i = self.index(threshold)
        return float(self.accuracy[i]), float(self.abstained[i])


def threshold_curve(
    probs: np.ndarray, targets: np.ndarray, thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS
) -> ThresholdCurve:
    """Accuracy on kept images and fraction abstained for each threshold (kept = max prob >= threshold).

    Probabilities are compared as given (float64): a float32 0.9 is just below 0.9 and is abstained on.
    For an empty split every accuracy and abstention is NaN.
    """
    probs, targets = check_predictions(probs, targets)
    grid = np.asarray(thresholds, dtype=np.float64)
    n = targets.size
    if n == 0:
        nan = np.full(grid.shape, math.nan)
        return ThresholdCurve(grid, nan, nan.copy(), np.zeros(grid.shape, dtype=np.int64), 0)
    confidence = probs.max(axis=1)
    correct = predicted_classes(probs) == targets
    keep = confidence[None, :] >= grid[:, None]  # thresholds x samples
    kept = keep.sum(axis=1)
    right = (keep & correct[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(kept > 0, right / np.maximum(kept, 1), math.nan)
    return ThresholdCurve(grid, acc, (n - kept) / n, kept.astype(np.int64), n)


def write_threshold_csv(curves: Mapping[str, ThresholdCurve], path: str | Path) -> Path:
    """One CSV for several curves (e.g. val, test, test_calibrated): long format, one row per threshold."""
    rows = [
        (label, float(t), float(c.accuracy[i]), float(c.abstained[i]), int(c.kept[i]), c.total)
        for label, c in curves.items()
        for i, t in enumerate(c.thresholds)
    ]
    return write_csv(path, ["curve", "threshold", "accuracy", "abstained", "kept", "total"], rows)
