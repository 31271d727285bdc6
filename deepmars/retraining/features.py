"""Frozen backbone features of a data set's images, computed once and kept in a cache file.

Retraining only the final layer needs each image's penultimate features, which do not change
while the backbone is frozen: on a 2-core CPU a forward pass over MSL's 6,691 images costs
minutes, a logistic regression on the cached features seconds. The cache file is named by what
determines its content (the model config and the exact list of images), so a changed backbone
or image list never reads stale features, and an interrupted run leaves no partial file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepmars.config import ModelConfig
from deepmars.errors import ImageError
from deepmars.models.factory import build_model, head_prefix
from deepmars.schema import load

log = logging.getLogger(__name__)


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


def cache_key(model_cfg: Mapping, names: Sequence[str]) -> str:
    blob = json.dumps({"model": dict(model_cfg), "names": list(names)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_features(paths: Mapping[str, Path], model_cfg: Mapping, cache_dir: Path, *,
                    batch_size: int = 50, threads: int | None = None) -> FeatureSet:
    """Features of every image in ``paths`` (name -> file), read from or written to ``cache_dir``."""
    names = sorted(paths)
    target = Path(cache_dir) / f"features-{cache_key(model_cfg, names)}.npz"
    if target.is_file():
        return _read(target)
    feats = compute_features([paths[n] for n in names], names, model_cfg, batch_size=batch_size, threads=threads)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp.npz")
    np.savez(tmp, names=np.array(feats.names), features=feats.features,
             failed_names=np.array(list(feats.failures), dtype=str),
             failed_reasons=np.array(list(feats.failures.values()), dtype=str),
             model_cfg=json.dumps(dict(model_cfg), sort_keys=True, default=str))
    os.replace(tmp, target)
    log.info("cached %d feature vectors in %s", len(feats.names), target)
    return feats


def _read(path: Path) -> FeatureSet:
    with np.load(path) as data:
        return FeatureSet([str(n) for n in data["names"]], data["features"],
                          dict(zip((str(n) for n in data["failed_names"]), (str(r) for r in data["failed_reasons"]))))


@torch.inference_mode()
def compute_features(paths: Sequence[Path], names: Sequence[str], model_cfg: Mapping, *,
                     batch_size: int = 50, threads: int | None = None) -> FeatureSet:
    """Decode and forward every image (centre crop, eval mode); the head's input is the feature."""
    if threads:
        torch.set_num_threads(threads)
    spec = model_spec(model_cfg)
    model, pre = build_model(spec, 2)  # the head is not used: its input is the feature
    model.eval()
    head = model.get_submodule(head_prefix(model, spec.head))
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, args, out: captured.append(args[0].detach().float()))
    kept: list[str] = []
    failures: dict[str, str] = {}
    start = time.monotonic()
    try:
        for lo in range(0, len(paths), batch_size):
            arrays = []
            for path, name in zip(paths[lo:lo + batch_size], names[lo:lo + batch_size]):
                try:
                    arrays.append(pre.decode(path))
                    kept.append(name)
                except ImageError as exc:
                    failures[name] = exc.reason
            if arrays:
                model(pre.eval_batch(arrays))
            done = min(lo + batch_size, len(paths))
            if done % (batch_size * 10) == 0 or done == len(paths):
                log.info("features: %d / %d images, %.0f s", done, len(paths), time.monotonic() - start)
    finally:
        hook.remove()
    features = torch.cat(captured).reshape(len(kept), -1).numpy() if kept else np.zeros((0, 0), np.float32)
    return FeatureSet(kept, features.astype(np.float32), failures)
