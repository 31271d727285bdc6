"""Reduced precision with exact near-ties: images whose two best logits are close are classified again in fp32.

bf16 and int8 perturb logits by rounding noise (OpenVINO bf16 on the MSL Lite0 model: mean 0.05,
at most 1.2), so they change the class mostly where the two best classes are nearly tied. Measured
on the 1305 MSL test images: re-running in fp32 the images whose top-two logit gap is under 0.5
(10.7% of them) brought bf16's top-1 agreement with fp32 from 98.70% to 100.00% (0.3: 7.2% re-run,
99.85%), and int8's from 91.88% to 97.09%. The rows stay a reduced precision's (their own model id):
confidences elsewhere keep its rounding.
"""

from __future__ import annotations

import numpy as np

from deepmars.inference.classifier import Classifier

# In logits (before the temperature): about 10x bf16's mean logit error on the MSL model.
NEAR_TIE_MARGIN = 0.5


def near_ties(logits: np.ndarray, margin: float = NEAR_TIE_MARGIN) -> np.ndarray:
    """Rows whose best and second-best logits are within ``margin``."""
    if logits.shape[1] < 2:
        return np.zeros(len(logits), dtype=bool)
    top_two = np.partition(logits, -2, axis=1)[:, -2:]
    return np.abs(top_two[:, 1] - top_two[:, 0]) < margin


class NearTiesExact(Classifier):
    """``reduced``'s logits, with near-tied images' logits replaced by ``exact``'s (fp32, same runtime)."""

    def __init__(self, reduced: Classifier, exact: Classifier):
        super().__init__(reduced.bundle, reduced.precision)
        self.runtime = reduced.runtime
        self.reduced, self.exact = reduced, exact
        self.images = self.rechecked = 0
        self.add_cleanup(exact.close)
        self.add_cleanup(reduced.close)

    def _logits(self, pixels: np.ndarray) -> np.ndarray:
        logits = np.array(self.reduced.logits(pixels), dtype=np.float32, copy=True)
        near = near_ties(logits)
        if near.any():
            logits[near] = self.exact.logits(pixels[near])
        self.images += len(pixels)
        self.rechecked += int(near.sum())
        return logits

    def reset_counts(self) -> None:
        self.images = self.rechecked = 0

    @property
    def rechecked_fraction(self) -> float:
        return self.rechecked / self.images if self.images else 0.0
