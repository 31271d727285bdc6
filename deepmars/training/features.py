"""Frozen pretrained features of images, per test-time view, optionally cached on disk.

The linear probe (LP-FT's first stage, or the whole of a frozen-backbone recipe) needs the
penultimate features of every training image, and a frozen recipe needs those of val and test
too. A cross-validation sweep asks for the same images' features once per fold; with
``trainer.feature_cache`` set they are computed once and read back afterwards.

A cache entry is keyed by what determines the features: the backbone and its pretrained weights,
the preprocessing, the view, the numeric precision, and the image file's content (sha256). The
cache is one ``<key>/<view>.npz`` per backbone setting and view, holding the digests and features
of every image computed so far; it is rewritten atomically when images are added.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepmars.data.transforms import Preprocess
from deepmars.devices import model_device
from deepmars.models.tta import expand_views

log = logging.getLogger(__name__)

FEATURE_VERSION = 1  # bump when the way features are computed changes: old cache entries stop matching
DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


@torch.inference_mode()
def view_features(model: nn.Module, head: nn.Module, images: np.ndarray, pre: Preprocess,
                  views: Sequence[str] = ("identity",), batch_size: int = 100, dtype: str = "float32") -> np.ndarray:
    """(N, V, D) float32: the head's input for each image and view (captured by a hook: any backbone)."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, args, out: captured.append(args[0].detach().float().cpu()))
    autocast = DTYPES[dtype]
    device = model_device(model)
    try:
        model.eval()
        for i in range(0, len(images), batch_size):
            x = expand_views(pre.eval_batch(images[i:i + batch_size], device), views)
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                model(x)
    finally:
        hook.remove()
    if not captured:
        return np.zeros((0, len(views), head.in_features), dtype=np.float32)
    # each batch is view-major: (V * n, D) -> (n, V, D)
    parts = [c.reshape(len(views), -1, c.shape[-1]).transpose(0, 1) for c in captured]
    return torch.cat(parts).numpy()


def cache_key(model_cfg: Mapping, pre: Preprocess, dtype: str) -> str:
    """Names the backbone setting: weights, feature blocks, preprocessing and precision (not the head, not the
    views)."""
    what = {k: model_cfg.get(k) for k in ("source", "name", "pretrained")}
    what["feature_blocks"] = sorted(int(b) for b in (model_cfg.get("feature_blocks") or []))
    pretrained = str(model_cfg.get("pretrained"))
    if os.path.isfile(os.path.expanduser(pretrained)):  # a weights file: its content, not its name
        what["pretrained"] = file_sha256(Path(os.path.expanduser(pretrained)))
    blob = json.dumps({"model": what, "preprocess": pre.to_dict(), "dtype": dtype, "version": FEATURE_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """Features per image digest for one backbone setting, one file per view."""

    def __init__(self, root: str | Path, key: str):
        self.folder = Path(root) / key
        self._loaded: dict[str, dict[str, np.ndarray]] = {}

    def _path(self, view: str) -> Path:
        return self.folder / f"{view}.npz"

    def get(self, view: str) -> dict[str, np.ndarray]:
        if view not in self._loaded:
            path = self._path(view)
            entries: dict[str, np.ndarray] = {}
            if path.is_file():
                with np.load(path) as z:
                    entries = dict(zip(z["digests"].tolist(), z["features"], strict=True))
            self._loaded[view] = entries
        return self._loaded[view]

    def add(self, view: str, digests: Sequence[str], features: np.ndarray) -> None:
        entries = self.get(view)
        entries.update(zip(digests, features, strict=True))
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path(view).with_name(f".{view}.tmp.npz")
        keys = sorted(entries)
        np.savez(tmp, digests=np.array(keys), features=np.stack([entries[k] for k in keys]).astype(np.float32))
        os.replace(tmp, self._path(view))


def features_for(model: nn.Module, head: nn.Module, images: np.ndarray, paths: Sequence[Path], pre: Preprocess,
                 views: Sequence[str], *, model_cfg: Mapping, cache_dir: str | None = None,
                 batch_size: int = 100, dtype: str = "float32") -> np.ndarray:
    """(N, V, D) features of decoded ``images`` (from ``paths``), read from the cache where present."""
    if not cache_dir:
        return view_features(model, head, images, pre, views, batch_size, dtype)
    cache = FeatureCache(cache_dir, cache_key(model_cfg, pre, dtype))
    digests = [file_sha256(Path(p)) for p in paths]
    out = None
    for v_index, view in enumerate(views):
        entries = cache.get(view)
        missing = [i for i, d in enumerate(digests) if d not in entries]
        if missing:
            log.info("features of %d images, view %s: computing (cache %s)", len(missing), view, cache.folder)
            computed = view_features(model, head, images[missing], pre, (view,), batch_size, dtype)[:, 0]
            cache.add(view, [digests[i] for i in missing], computed)
            entries = cache.get(view)
        column = np.stack([entries[d] for d in digests]) if digests else np.zeros((0, head.in_features))
        if out is None:
            out = np.zeros((len(digests), len(views), column.shape[1]), dtype=np.float32)
        out[:, v_index] = column
    return out
