"""One split's model outputs, labels and per-sample metadata, checked once and passed around whole.

The report needs probabilities (for accuracy and thresholds) and logits (for temperature scaling);
a caller may have either. Given logits, probabilities are their softmax; given only probabilities,
their logs serve as logits (softmax is unchanged by a per-row constant), so calibration still works.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepmars.errors import DataError
from deepmars.evaluation.calibration import logits_from_probs, softmax
from deepmars.evaluation.inputs import check_per_sample, check_predictions


@dataclass
class SplitPredictions:
    """Outputs of one model on one split.

    targets: N class indices. probs and/or logits: N x C (at least one). sols: optional N ints (MSL
    sol of each image, for the drift view). groups: optional N strings (e.g. instrument) for the
    per-group table. An empty split is N = 0 (arrays of shape (0,) or (0, C)).
    """

    targets: np.ndarray
    probs: np.ndarray | None = None
    logits: np.ndarray | None = None
    sols: np.ndarray | None = None
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.probs is None and self.logits is None:
            raise DataError("split predictions need probs or logits (N x C), got neither")
        if self.logits is not None:
            self.logits, self.targets = check_predictions(self.logits, self.targets)
        if self.probs is None:
            self.probs = softmax(self.logits)
        self.probs, self.targets = check_predictions(self.probs, self.targets)
        if self.logits is not None and self.logits.shape != self.probs.shape:
            raise DataError(f"logits have shape {self.logits.shape} but probs have shape {self.probs.shape}")
        if self.sols is not None:
            self.sols = check_per_sample(self.sols, self.n, "sols")
        if self.groups is not None:
            self.groups = check_per_sample(self.groups, self.n, "groups").astype(str)

    @property
    def n(self) -> int:
        """Number of images in the split."""
        return int(self.targets.size)

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    def calibration_logits(self) -> np.ndarray:
        """Logits for temperature scaling: the given logits, else log-probabilities."""
        return self.logits if self.logits is not None else logits_from_probs(self.probs)

    def for_classes(self, num_classes: int) -> SplitPredictions:
        """This split checked against `num_classes` classes (an empty split takes that width)."""
        probs, targets = check_predictions(self.probs, self.targets, num_classes)
        logits = None
        if self.logits is not None:
            logits, _ = check_predictions(self.logits, self.targets, num_classes)
        return replace(self, probs=probs, logits=logits, targets=targets)
