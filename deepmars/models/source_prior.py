"""Each source image's own class prior, re-estimated from its landmarks (``model.source_prior_strength``).

The landmarks of one HiRISE image share its terrain: an image of a crater field holds mostly
craters, one of a dune field mostly dunes, while the head was fitted to the class mix of all
training images together. Saerens, Latinne and Decaestecker (Neural Computation 2002, "Adjusting
the outputs of a classifier to new a priori probabilities") re-estimate a new prior from unlabeled
posteriors by EM and reweight every posterior by new prior / training prior. With few landmarks
per image the plain estimate runs away (a class seen once takes over), so the estimate here is a
maximum a posteriori one: a Dirichlet prior worth ``strength`` images of the training class mix,
which holds a small image near the training mix and lets a large one move to its own.

Every step works on posteriors before the temperature; the adapted posteriors' logs are the
logits the temperature then divides, so training, evaluation and ``landmarks.py`` apply the same
chain: network -> test-time views -> source prior -> temperature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepmars.errors import ConfigError

MIN_PRIOR = 1e-6  # a class absent from training keeps a tiny prior: the ratio stays finite


def class_prior(targets: np.ndarray, num_classes: int, balanced: bool = False) -> np.ndarray:
    """The class mix the model learned (each at least MIN_PRIOR, summing to 1): the training
    frequencies, or, when every class weighed the same in training (``balanced``), the same share
    for each class present."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_classes)[:num_classes].astype(np.float64)
    if counts.sum() == 0:
        raise ConfigError("model.source_prior_strength: no training images to take the class prior from")
    if balanced:
        counts = (counts > 0).astype(np.float64)
    prior = np.maximum(counts / counts.sum(), MIN_PRIOR)
    return prior / prior.sum()


def adapt_prior(probs: np.ndarray, prior: np.ndarray, strength: float,
                max_iters: int = 200, tol: float = 1e-9) -> np.ndarray:
    """One image's landmarks' posteriors (N, C) reweighted to the prior EM estimates from them."""
    probs = np.asarray(probs, dtype=np.float64)
    prior = np.asarray(prior, dtype=np.float64)
    current = prior
    for _ in range(max_iters):
        adapted = _reweight(probs, current / prior)
        estimate = (adapted.sum(0) + strength * prior) / (len(probs) + strength)
        done = np.abs(estimate - current).max() < tol
        current = estimate
        if done:
            break
    return _reweight(probs, current / prior)


def _reweight(probs: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    out = probs * ratio
    return out / out.sum(1, keepdims=True)


def adapt_by_source(probs: np.ndarray, sources: Sequence[str | None], prior: np.ndarray,
                    strength: float) -> np.ndarray:
    """Posteriors (N, C) adapted within each source image; a row without a source stays as it is."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(sources) != len(probs):
        raise ValueError(f"{len(sources)} source names for {len(probs)} rows of posteriors")
    out = probs.copy()
    keys = np.array(["" if s is None else str(s) for s in sources], dtype=object)
    for key in dict.fromkeys(keys):
        if key:
            rows = np.flatnonzero(keys == key)
            out[rows] = adapt_prior(probs[rows], prior, strength)
    return out


def adapted_logits(logits: np.ndarray, sources: Sequence[str | None], prior: np.ndarray,
                   strength: float) -> np.ndarray:
    """log of the adapted posteriors of (N, C) logits: what the temperature then divides."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(1, keepdims=True)
    adapted = adapt_by_source(probs, sources, prior, strength)
    return np.log(np.maximum(adapted, np.finfo(np.float64).tiny)).astype(np.float32)
