"""Batch augmentation on uint8 NHWC tensors: Caffe's random crop + mirror, and rotations.

Working on the uint8 batch before normalisation keeps this cheap next to the model; every
random choice comes from the generator passed in, so a batch is a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def augment_batch(batch: torch.Tensor, img_size: int, cfg: Mapping, gen: torch.Generator) -> torch.Tensor:
    """Random ``img_size`` crops (or centre crops) with optional flips and 90-degree turns."""
    n, h, w, _ = batch.shape
    if cfg.get("random_crop", True):
        ys = torch.randint(0, h - img_size + 1, (n,), generator=gen).tolist()
        xs = torch.randint(0, w - img_size + 1, (n,), generator=gen).tolist()
    else:
        ys, xs = [(h - img_size) // 2] * n, [(w - img_size) // 2] * n
    mirror = torch.rand(n, generator=gen) < 0.5
    vflip = torch.rand(n, generator=gen) < 0.5
    turns = torch.randint(0, 4, (n,), generator=gen)
    out = torch.empty((n, img_size, img_size, batch.shape[3]), dtype=batch.dtype)
    for i in range(n):
        crop = batch[i, ys[i]:ys[i] + img_size, xs[i]:xs[i] + img_size]
        if cfg.get("mirror", True) and mirror[i]:
            crop = crop.flip(1)
        if cfg.get("vflip", False) and vflip[i]:
            crop = crop.flip(0)
        if cfg.get("rot90", False) and turns[i]:
            crop = torch.rot90(crop, int(turns[i]), dims=(0, 1))
        out[i] = crop
    return out
