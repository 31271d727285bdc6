"""Per-group accuracy (e.g. by instrument) and MSLNet-inst: one model per group, each image routed.

The paper's MSLNet-inst trained one network per MSL instrument (Mastcam Left, Mastcam Right, MAHLI)
and classified each image with its own instrument's network. `route_by_group` does the routing on
saved probabilities, so the combination is scored with the same functions as any single model.
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
class GroupAccuracy:
    """Accuracy of one group's images (e.g. all MAHLI images of a split)."""

    group: str
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else math.nan


def accuracy_by_group(
    probs: np.ndarray, targets: np.ndarray, groups: np.ndarray | Sequence[str]
) -> list[GroupAccuracy]:
    """Accuracy per distinct group value, groups sorted by name; empty list for an empty split."""
    probs, targets = check_predictions(probs, targets)
    groups = check_per_sample(groups, targets.size, "groups").astype(str)
    correct = predicted_classes(probs) == targets
    return [
        GroupAccuracy(str(g), int((groups == g).sum()), int(correct[groups == g].sum()))
        for g in sorted(set(groups.tolist()))
    ]


def route_by_group(probs_by_group: dict[str, np.ndarray], groups: np.ndarray) -> np.ndarray:
    """Combine per-group models: row i is taken from the model of sample i's group.

    `probs_by_group[g]` may hold either all N samples (N x C, the model run on every image) or only
    group g's samples, in the order they appear in `groups` (n_g x C). The two readings agree when
    all samples are in g, so there is no ambiguity. A sample whose group has no model raises
    ConfigError naming the groups without a model and how many samples each has.
    """
    groups = np.asarray(groups).astype(str)
    if groups.ndim != 1:
        raise DataError(f"groups must be a 1-D array with one value per sample, got shape {groups.shape}")
    n = groups.size
    present, counts = np.unique(groups, return_counts=True)
    missing = [(str(g), int(k)) for g, k in zip(present, counts, strict=True) if str(g) not in probs_by_group]
    if missing:
        listed = ", ".join(f"{g!r} ({k} sample{'s' if k != 1 else ''})" for g, k in missing)
        raise ConfigError(
            f"no model for group(s) {listed}; models were given for {sorted(probs_by_group)}"
        )
    widths = {g: np.asarray(p).shape[1:] for g, p in probs_by_group.items()}
    if len(set(widths.values())) > 1:
        raise DataError(f"per-group models disagree on the number of classes: {widths}")
    width = next(iter(widths.values()), (0,))
    out = np.zeros((n, *width), dtype=np.float64)
    for g in present.tolist():
        probs = np.asarray(probs_by_group[g], dtype=np.float64)
        rows = groups == g
        if probs.ndim != 2:
            raise DataError(f"probabilities of group {g!r} must be 2-D (samples x classes), got shape {probs.shape}")
        if probs.shape[0] == n:
            out[rows] = probs[rows]
        elif probs.shape[0] == int(rows.sum()):
            out[rows] = probs
        else:
            raise DataError(
                f"group {g!r}: {probs.shape[0]} rows of probabilities, expected {n} (all samples) "
                f"or {int(rows.sum())} (the group's samples)"
            )
    return out


def write_group_csv(groups_by_split: Mapping[str, Sequence[GroupAccuracy]], path: str | Path) -> Path:
    """One CSV for several splits: split, group, images, correct, accuracy."""
    rows = [(split, g.group, g.n, g.correct, g.accuracy) for split, gs in groups_by_split.items() for g in gs]
    return write_csv(path, ["split", "group", "n", "correct", "accuracy"], rows)
