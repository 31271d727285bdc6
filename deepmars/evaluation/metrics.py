"""Accuracy, the paper's two baselines, per-class scores and the confusion matrix.

The Deep Mars paper reads every accuracy next to two baselines on the same split: guessing
uniformly at random (expected accuracy 1/C) and always answering the training set's most common
class (MSL "ground", HiRISE "other"). A split that lacks some classes, or is empty, gives NaN where
a number is undefined (recall of an absent class, accuracy of no images) rather than an error or 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from deepmars.evaluation.inputs import check_predictions
from deepmars.evaluation.tables import write_csv


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """Index of the highest score in each row (ties go to the lower index, as numpy's argmax)."""
    probs = np.asarray(probs)
    if probs.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argmax(probs, axis=1).astype(np.int64)


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of rows whose top class is the target; NaN for an empty split."""
    probs, targets = check_predictions(probs, targets)
    if targets.size == 0:
        return math.nan
    return float(np.mean(predicted_classes(probs) == targets))


def random_baseline_accuracy(num_classes: int) -> float:
    """Expected accuracy of guessing uniformly among `num_classes` classes: 1/C on any split."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return 1.0 / num_classes


def majority_class(train_targets: np.ndarray, num_classes: int) -> int | None:
    """The training set's most common class (lowest index on a tie); None for an empty training set."""
    train_targets = np.asarray(train_targets, dtype=np.int64)
    if train_targets.size == 0:
        return None
    return int(np.argmax(np.bincount(train_targets, minlength=num_classes)))


def majority_baseline_accuracy(targets: np.ndarray, majority: int | None) -> float:
    """Accuracy of always predicting `majority` on a split; NaN when the split is empty or no majority."""
    targets = np.asarray(targets, dtype=np.int64)
    if targets.size == 0 or majority is None:
        return math.nan
    return float(np.mean(targets == majority))


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support of one class on one split.

    Undefined values are NaN: recall and F1 of a class absent from the split, precision of a class
    never predicted (its F1 is 0 when it has images: recall 0). `absent` marks a class with no
    images in the split.
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int

    @property
    def absent(self) -> bool:
        return self.support == 0


def per_class_scores(probs: np.ndarray, targets: np.ndarray, class_names: Sequence[str]) -> list[ClassScores]:
    """Per-class precision, recall, F1, support and count predicted, one entry per class name in order."""
    c = len(class_names)
    probs, targets = check_predictions(probs, targets, c)
    preds = predicted_classes(probs)
    support = np.bincount(targets, minlength=c)
    predicted = np.bincount(preds, minlength=c)
    if targets.size == 0:
        nan = np.full(c, math.nan)
        precision, recall, f1 = nan, nan, nan
    else:
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, preds, labels=list(range(c)), zero_division=np.nan
        )
        # sklearn gives F1 = 0 to a class absent from the split but predicted (precision 0, recall
        # undefined); with no images of the class its F1 is undefined too, and macro F1 skips it.
        f1 = np.where(support == 0, math.nan, f1)
    return [
        ClassScores(str(class_names[k]), float(precision[k]), float(recall[k]), float(f1[k]),
                    int(support[k]), int(predicted[k]))
        for k in range(c)
    ]


def macro_f1(scores: Sequence[ClassScores]) -> float:
    """Mean F1 over the classes present in the split (absent classes have no F1); NaN if none."""
    values = [s.f1 for s in scores if not s.absent]
    return float(np.mean(values)) if values else math.nan


def confusion_counts(probs: np.ndarray, targets: np.ndarray, num_classes: int) -> np.ndarray:
    """C x C counts: row = true class, column = predicted class. All zeros for an empty split."""
    probs, targets = check_predictions(probs, targets, num_classes)
    if targets.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return confusion_matrix(targets, predicted_classes(probs), labels=list(range(num_classes))).astype(np.int64)


def row_normalise(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the recall view); rows of classes absent from the split are NaN."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), math.nan)


@dataclass(frozen=True)
class ConfusedPair:
    """Images of class `true` predicted as class `predicted`: how many, and what fraction of `true`."""

    true: str
    predicted: str
    count: int
    rate: float


def most_confused_pairs(counts: np.ndarray, class_names: Sequence[str], k: int = 10) -> list[ConfusedPair]:
    """The `k` largest off-diagonal cells, largest count first (ties: true then predicted index)."""
    counts = np.asarray(counts, dtype=np.int64)
    totals = counts.sum(axis=1)
    cells = [
        (int(counts[i, j]), i, j)
        for i in range(counts.shape[0])
        for j in range(counts.shape[1])
        if i != j and counts[i, j] > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [
        ConfusedPair(str(class_names[i]), str(class_names[j]), n, n / int(totals[i]))
        for n, i, j in cells[:k]
    ]


def write_per_class_csv(scores: Sequence[ClassScores], path: str | Path) -> Path:
    """CSV of per-class scores, one row per class, with an `absent` column (true/false)."""
    rows = [(s.name, s.precision, s.recall, s.f1, s.support, s.predicted, s.absent) for s in scores]
    return write_csv(path, ["class", "precision", "recall", "f1", "support", "predicted", "absent"], rows)


def write_confusion_csv(matrix: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Confusion matrix as CSV: first column the true class, header the predicted classes."""
    rows = [[name, *[v.item() for v in matrix[i]]] for i, name in enumerate(class_names)]
    return write_csv(path, ["true \\ predicted", *class_names], rows)


def write_confused_pairs_csv(pairs: Sequence[ConfusedPair], path: str | Path) -> Path:
    """CSV of the most-confused pairs, in the order given."""
    return write_csv(path, ["true", "predicted", "count", "rate"],
                     [(p.true, p.predicted, p.count, p.rate) for p in pairs])
