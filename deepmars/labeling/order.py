"""Which image to label first: the paper's random order, or the current model's most uncertain.

Active learning by uncertainty sampling (Settles, "Active Learning Literature Survey", 2009):

- ``least_confident``: lowest top-1 probability first;
- ``margin``: smallest gap between the top two probabilities first;
- ``entropy``: highest entropy of the posterior first.

The scores come from the catalog's posteriors (``predictions.top_k`` / ``confidence``). The
catalog keeps the top k probabilities only (``top_k=5`` by default; predict.py with ``top_k`` equal
to the class count keeps all): the mass the top k leave is spread evenly over the other classes,
which leaves the least-confidence and margin scores exact and bounds the entropy from above.
The same functions rank images in the retraining simulation, so it measures the tool's orders.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from deepmars.catalog.labels import ORDERS


class Uncertainty(NamedTuple):
    confidence: float
    margin: float
    entropy: float


def from_probabilities(probs: Sequence[float]) -> Uncertainty:
    """Scores of one full posterior."""
    p = sorted((float(x) for x in probs), reverse=True)
    second = p[1] if len(p) > 1 else 0.0
    return Uncertainty(p[0], p[0] - second, -sum(x * math.log(x) for x in p if x > 0))


def from_top_k(top_k: Sequence[dict] | str, num_classes: int) -> Uncertainty:
    """Scores of a catalog ``top_k`` ([{"class": name, "p": probability}, ...] or its JSON)."""
    entries = json.loads(top_k) if isinstance(top_k, str) else list(top_k)
    p = sorted((float(e["p"]) for e in entries), reverse=True)
    if not p:
        raise ValueError("top_k is empty")
    rest_mass = max(0.0, 1.0 - sum(p))
    rest_classes = max(0, num_classes - len(p))
    entropy = -sum(x * math.log(x) for x in p if x > 0)
    if rest_mass > 0 and rest_classes:
        entropy += rest_mass * math.log(rest_classes / rest_mass)
    second = p[1] if len(p) > 1 else (rest_mass / rest_classes if rest_classes else 0.0)
    return Uncertainty(p[0], p[0] - second, entropy)


def scores(probs: np.ndarray) -> np.ndarray:
    """(N, 3) confidence, margin, entropy of (N, C) posteriors (vectorised ``from_probabilities``)."""
    top = -np.sort(-probs, axis=1)
    second = top[:, 1] if probs.shape[1] > 1 else np.zeros(len(probs))
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probs > 0, probs * np.log(probs), 0.0).sum(axis=1)
    return np.stack([top[:, 0], top[:, 0] - second, entropy], axis=1)


def random_key(seed: int, path: str) -> float:
    """The random-order key of an image: fixed by seed and path, not by when the image was added."""
    return random.Random(f"{seed}:{path}").random()


def rank(probs: np.ndarray | None, keys: np.ndarray, order: str) -> np.ndarray:
    """Indices in ``order`` as the label store serves them (ties by random key, as its SQL does)."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r} is not one of {list(ORDERS)}")
    if order == "random" or probs is None:
        return np.argsort(keys, kind="stable")
    s = scores(probs)
    primary = {"least_confident": s[:, 0], "margin": s[:, 1], "entropy": -s[:, 2]}[order]
    return np.lexsort((keys, primary))
