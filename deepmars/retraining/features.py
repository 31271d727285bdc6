"""Frozen backbone features of a data set's images, through the training feature cache.

Retraining only the final layer needs each image's penultimate features, which do not change
while the backbone is frozen: on a 2-core CPU a forward pass over MSL's 6,691 images costs
minutes, a logistic regression on the cached features seconds. The features live in the same
cache as the frozen-backbone training recipe's (``deepmars.training.features``: keyed by backbone,
weights, preprocessing and precision, entries by image content), so either fills it for the other.
Images are decoded only when their features are missing, and the cache is written every
``SAVE_EVERY`` images, so an interrupted run keeps what it computed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepmars.config import ModelConfig
from deepmars.errors import ImageError
from deepmars.models.factory import build_model, head_prefix
from deepmars.schema import load, plain
from deepmars.training.features import FeatureCache, cache_key, file_sha256, view_features

log = logging.getLogger(__name__)

VIEW = "identity"
SAVE_EVERY = 500


@dataclass(frozen=True)
class FeatureSet:
    """Penultimate features of images, by name (the name as in the label files)."""

    names: list[str]
    features: np.ndarray  # (N, D) float32
    failures: dict[str, str]  # name -> why it could not be decoded

    def rows(self, names: Sequence[str]) -> np.ndarray:
        """The feature rows of ``names``, in that order (KeyError naming the first missing one)."""
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise KeyError(f"no cached features for {missing[0]!r} ({len(missing)} images missing)")
        return self.features[[index[n] for n in names]]


def model_spec(model_cfg: Mapping) -> ModelConfig:
    """A ``model`` config (conf/model/*.yaml as a dict) checked into the schema build_model takes."""
    return load(ModelConfig, model_cfg, prefix="model")


def cached_features(paths: Mapping[str, Path], model_cfg: Mapping, cache_dir: Path, *,
                    batch_size: int = 50, threads: int | None = None) -> FeatureSet:
    """Features of every image in ``paths`` (name -> file), from ``cache_dir`` where present."""
    if threads:
        torch.set_num_threads(threads)
    spec = model_spec(model_cfg)
    model, pre = build_model(spec, 2)  # the head is not used: its input is the feature
    model.eval()
    head = model.get_submodule(head_prefix(model, spec.head))
    cache = FeatureCache(cache_dir, cache_key(plain(spec), pre, "float32"))
    names = sorted(paths)
    digests = {n: file_sha256(paths[n]) for n in names}
    missing = [n for n in names if digests[n] not in cache.get(VIEW)]
    failures = _compute(missing, paths, digests, model, head, pre, cache, batch_size)
    entries = cache.get(VIEW)
    kept = [n for n in names if n not in failures]
    features = np.stack([entries[digests[n]] for n in kept]).astype(np.float32) if kept else np.zeros((0, 0))
    return FeatureSet(kept, features, failures)


def _compute(names: Sequence[str], paths: Mapping[str, Path], digests: Mapping[str, str], model, head, pre,
             cache: FeatureCache, batch_size: int) -> dict[str, str]:
    """Decode and forward ``names`` into the cache; returns the ones that cannot be decoded."""
    failures: dict[str, str] = {}
    started = time.monotonic()
    pending: tuple[list[str], list[np.ndarray]] = ([], [])
    for lo in range(0, len(names), batch_size):
        arrays, done = [], []
        for name in names[lo:lo + batch_size]:
            try:
                arrays.append(pre.decode(paths[name]))
                done.append(name)
            except ImageError as exc:
                failures[name] = exc.reason
        if arrays:
            pending[0].extend(done)
            pending[1].append(view_features(model, head, np.stack(arrays), pre, (VIEW,), batch_size)[:, 0])
        end = min(lo + batch_size, len(names))
        if pending[0] and (len(pending[0]) >= SAVE_EVERY or end == len(names)):
            cache.add(VIEW, [digests[n] for n in pending[0]], np.concatenate(pending[1]))
            pending = ([], [])
            log.info("features: %d / %d images, %.0f s", end, len(names), time.monotonic() - started)
    return failures
