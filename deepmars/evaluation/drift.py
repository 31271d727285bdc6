"""Accuracy by sol window: how a model trained on early sols fares as the rover moves on.

The paper's lesson for MSL: val and test come from later sols than train, and test (later still)
fell below val. Grouping a split's images into fixed-width sol windows shows that drift directly.
Windows are aligned to multiples of the width (width 50: sols 0-49, 50-99, ...) so windows line
up across splits; only windows holding at least one image are listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepmars.errors import ConfigError, DataError
from deepmars.evaluation.inputs import check_per_sample, check_predictions
from deepmars.evaluation.metrics import predicted_classes
from deepmars.evaluation.tables import write_csv


@dataclass(frozen=True)
class SolWindow:
    """Images with start <= sol <= end (inclusive), how many there are and how many were right."""

    start: int
    end: int
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else math.nan


def check_window_width(width: int) -> int:
    """The sol window width as a positive int, or ConfigError naming the bad value."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ConfigError(f"sol window width must be a positive integer number of sols, got {width!r}")
    return int(width)


def accuracy_by_sol_window(
    probs: np.ndarray, targets: np.ndarray, sols: np.ndarray | Sequence[int], width: int = 50
) -> list[SolWindow]:
    """Accuracy per sol window of `width` sols, windows in sol order; empty list for an empty split."""
    width = check_window_width(width)
    probs, targets = check_predictions(probs, targets)
    sols = check_per_sample(sols, targets.size, "sols")
    if targets.size == 0:
        return []
    if not np.issubdtype(sols.dtype, np.integer):
        if sols.dtype.kind != "f" or not np.all(np.mod(sols, 1) == 0):
            raise DataError(f"sols must be whole numbers, got dtype {sols.dtype}")
    correct = predicted_classes(probs) == targets
    starts = (sols.astype(np.int64) // width) * width
    windows = []
    for start in np.unique(starts):
        inside = starts == start
        windows.append(SolWindow(int(start), int(start) + width - 1, int(inside.sum()), int(correct[inside].sum())))
    return windows


def write_drift_csv(windows_by_split: Mapping[str, Sequence[SolWindow]], path: str | Path) -> Path:
    """One CSV for several splits: split, first sol, last sol, images, correct, accuracy."""
    rows = [
        (split, w.start, w.end, w.n, w.correct, w.accuracy)
        for split, windows in windows_by_split.items()
        for w in windows
    ]
    return write_csv(path, ["split", "sol_start", "sol_end", "n", "correct", "accuracy"], rows)
