"""A probability vector as the catalog stores it: predicted class, confidence and top-k JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# Probabilities are stored to 6 decimals: float32 softmax carries about 7 significant digits, and
# the catalog should not differ in noise digits between two runs over the same images.
DECIMALS = 6


class Ranked(NamedTuple):
    predicted_class: str
    confidence: float
    top_k: str  # JSON [{"class": name, "p": probability}, ...], most probable first


def rank(probs: np.ndarray, class_names: Sequence[str], k: int) -> Ranked:
    """The ``k`` most probable classes (ties by class order), rounded to DECIMALS."""
    order = np.argsort(-probs, kind="stable")[:min(k, len(probs))]
    top_k = json.dumps([{"class": class_names[j], "p": round(float(probs[j]), DECIMALS)} for j in order])
    return Ranked(class_names[order[0]], round(float(probs[order[0]]), DECIMALS), top_k)
