"""Everything computed for one split of one model, gathered in one record for the report.

`evaluate_split` is the single place that runs the metric, threshold, calibration, drift and group
functions on a split, so the report's tables, files and metric names all read the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepmars.evaluation.calibration import ECE_BINS, ReliabilityBins, apply_temperature, reliability_bins
from deepmars.evaluation.drift import SolWindow, accuracy_by_sol_window
from deepmars.evaluation.groups import GroupAccuracy, accuracy_by_group
from deepmars.evaluation.metrics import (
    ClassScores,
    ConfusedPair,
    accuracy,
    confusion_counts,
    macro_f1,
    majority_baseline_accuracy,
    most_confused_pairs,
    per_class_scores,
)
from deepmars.evaluation.predictions import SplitPredictions
from deepmars.evaluation.thresholds import ThresholdCurve, threshold_curve


@dataclass
class SplitResult:
    """One split's evaluation. The optional parts are None when not computed: threshold and
    calibration parts for the training split, calibrated parts without a temperature, drift without
    sols, groups without group labels."""

    name: str
    n: int
    acc: float
    majority_acc: float
    scores: list[ClassScores]
    counts: np.ndarray
    pairs: list[ConfusedPair]
    curve: ThresholdCurve | None = None
    curve_calibrated: ThresholdCurve | None = None
    bins: ReliabilityBins | None = None
    bins_calibrated: ReliabilityBins | None = None
    windows: list[SolWindow] | None = None
    groups: list[GroupAccuracy] | None = None

    @property
    def macro_f1(self) -> float:
        return macro_f1(self.scores)

    @property
    def absent(self) -> list[str]:
        """Names of classes with no images in this split."""
        return [s.name for s in self.scores if s.absent]


def evaluate_split(
    name: str,
    split: SplitPredictions,
    class_names: Sequence[str],
    *,
    majority: int | None,
    temperature: float | None,
    analyse: bool,
    sol_window: int,
    top_confused: int = 10,
) -> SplitResult:
    """Compute a split's results. `analyse` adds thresholds, calibration, drift (when sols are given)
    and per-group accuracy (when groups are given); the training split is usually not analysed."""
    probs, targets = split.probs, split.targets
    counts = confusion_counts(probs, targets, len(class_names))
    result = SplitResult(
        name=name,
        n=split.n,
        acc=accuracy(probs, targets),
        majority_acc=majority_baseline_accuracy(targets, majority),
        scores=per_class_scores(probs, targets, class_names),
        counts=counts,
        pairs=most_confused_pairs(counts, class_names, top_confused),
    )
    if not analyse:
        return result
    result.curve = threshold_curve(probs, targets)
    result.bins = reliability_bins(probs, targets, ECE_BINS)
    if temperature is not None:
        calibrated = apply_temperature(split.calibration_logits(), temperature)
        result.curve_calibrated = threshold_curve(calibrated, targets)
        result.bins_calibrated = reliability_bins(calibrated, targets, ECE_BINS)
    if split.sols is not None:
        result.windows = accuracy_by_sol_window(probs, targets, split.sols, sol_window)
    if split.groups is not None:
        result.groups = accuracy_by_group(probs, targets, split.groups)
    return result
