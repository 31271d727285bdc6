"""Checking what evaluation is given: class names that match, and arrays of consistent shape.

A model scored against a data set with other class names (or the same names in another order)
would produce numbers that look fine and mean nothing, so that is refused with the mismatch listed.
Array checks turn a shape error deep inside numpy into a message naming what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from deepmars.errors import DataError


def check_class_names(model_names: Sequence[str], data_names: Sequence[str]) -> None:
    """Raise DataError unless the model and the data set have the same class names in the same order.

    The message lists names only the model has, names only the data set has, duplicates, and,
    when the sets agree, the first position where the order differs (class indices would not line up).
    """
    model_names, data_names = list(model_names), list(data_names)
    if model_names == data_names:
        return
    problems: list[str] = []
    only_model = [n for n in model_names if n not in set(data_names)]
    only_data = [n for n in data_names if n not in set(model_names)]
    if only_model:
        problems.append(f"only in the model: {only_model}")
    if only_data:
        problems.append(f"only in the data set: {only_data}")
    for who, names in (("model", model_names), ("data set", data_names)):
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        if dupes:
            problems.append(f"repeated in the {who}: {dupes}")
    if not problems:
        i = next(i for i, (a, b) in enumerate(zip(model_names, data_names, strict=True)) if a != b)
        problems.append(
            f"same classes in a different order: index {i} is {model_names[i]!r} in the model "
            f"but {data_names[i]!r} in the data set"
        )
    raise DataError(
        f"class names differ between the model ({len(model_names)} classes) and the data set "
        f"({len(data_names)} classes): " + "; ".join(problems)
    )


def check_predictions(
    probs: np.ndarray, targets: np.ndarray, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (probs as float64 N x C, targets as int64 N), or raise DataError saying what is wrong.

    An empty split may be given as probs of shape (0,) or (0, C); it comes back as (0, C) when
    `num_classes` is known. Targets must be class indices 0..C-1.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise DataError(f"targets must be a 1-D array of class indices, got shape {targets.shape}")
    if probs.size == 0 and targets.size == 0:
        given = probs.shape[1] if probs.ndim == 2 else 0
        if num_classes is not None and given not in (0, num_classes):
            raise DataError(f"probabilities have {given} columns but there are {num_classes} classes")
        return np.zeros((0, num_classes if num_classes is not None else given)), np.zeros(0, dtype=np.int64)
    if probs.ndim != 2:
        raise DataError(f"probabilities must be an N x C array, got shape {probs.shape}")
    if probs.shape[0] != targets.shape[0]:
        raise DataError(f"{probs.shape[0]} rows of probabilities but {targets.shape[0]} targets")
    if num_classes is not None and probs.shape[1] != num_classes:
        raise DataError(f"probabilities have {probs.shape[1]} columns but there are {num_classes} classes")
    if not np.issubdtype(targets.dtype, np.integer):
        if targets.dtype.kind != "f" or not np.all(np.mod(targets, 1) == 0):
            raise DataError(f"targets must be integer class indices, got dtype {targets.dtype}")
    targets = targets.astype(np.int64)
    bad = (targets < 0) | (targets >= probs.shape[1])
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} target(s) outside 0..{probs.shape[1] - 1}, e.g. {int(targets[bad][0])}"
        )
    if not np.all(np.isfinite(probs)):
        raise DataError(f"{int((~np.isfinite(probs)).any(axis=1).sum())} row(s) of probabilities are not finite")
    return probs, targets


def check_per_sample(values: np.ndarray | Sequence, n: int, what: str) -> np.ndarray:
    """Per-sample metadata (sols, instruments) as an array of length `n`, or DataError naming `what`."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{what} must have one value per sample ({n}), got shape {arr.shape}")
    return arr
