"""Batch augmentation on uint8 NHWC tensors: Caffe's random crop + mirror, flips and 90-degree turns.

Two halves, so a GPU never waits on a Python loop:

- ``draw_augment``: every random choice of a batch, drawn on the CPU from the generator passed in
  (crop corners, mirror, vertical flip, turns; in that order, whatever is enabled), so a batch is
  a pure function of its seed on every device, and each process of a distributed run can take
  the draws of its own share of the global batch;
- ``apply_augment``: one gather on the batch's own device: each output pixel's source row and
  column are computed for all images at once (turns and flips fold into the index arithmetic),
  then read in one indexing operation. Pure indexing, so the result is exactly the pixels a
  per-image crop/flip/rot90 would give.

Working on the uint8 batch before normalisation moves a quarter of the bytes to the device and
keeps this cheap next to the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AugmentDraws:
    """Per-image random choices: crop corner, mirror (left-right), vertical flip, quarter turns."""

    ys: torch.Tensor
    xs: torch.Tensor
    mirror: torch.Tensor
    vflip: torch.Tensor
    turns: torch.Tensor

    def take(self, positions: np.ndarray | torch.Tensor) -> AugmentDraws:
        """The draws of some images of the batch (one process's share, in batch order)."""
        idx = torch.as_tensor(positions, dtype=torch.int64)
        return AugmentDraws(*(t[idx] for t in (self.ys, self.xs, self.mirror, self.vflip, self.turns)))

    def to(self, device: torch.device) -> AugmentDraws:
        return AugmentDraws(*(t.to(device) for t in (self.ys, self.xs, self.mirror, self.vflip, self.turns)))


def draw_augment(n: int, height: int, width: int, img_size: int, cfg: Mapping,
                 gen: torch.Generator) -> AugmentDraws:
    """The random choices for ``n`` images; disabled augmentations are drawn too, then switched off,
    so enabling one never changes the draws of another."""
    if cfg.get("random_crop", True):
        ys = torch.randint(0, height - img_size + 1, (n,), generator=gen)
        xs = torch.randint(0, width - img_size + 1, (n,), generator=gen)
    else:
        ys = torch.full((n,), (height - img_size) // 2, dtype=torch.int64)
        xs = torch.full((n,), (width - img_size) // 2, dtype=torch.int64)
    mirror = torch.rand(n, generator=gen) < 0.5
    vflip = torch.rand(n, generator=gen) < 0.5
    turns = torch.randint(0, 4, (n,), generator=gen)
    return AugmentDraws(ys, xs, mirror & bool(cfg.get("mirror", True)), vflip & bool(cfg.get("vflip", False)),
                        turns if cfg.get("rot90", False) else torch.zeros_like(turns))


def apply_augment(batch: torch.Tensor, draws: AugmentDraws, img_size: int) -> torch.Tensor:
    """``img_size`` crops of uint8 NHWC ``batch`` with each image's flips and turns, on its device.

    ``torch.rot90(crop, k, dims=(0, 1))`` reads output pixel (a, b) from the (flipped) crop at
    k=0 (a, b), k=1 (b, S-1-a), k=2 (S-1-a, S-1-b), k=3 (S-1-b, a); the flips, applied before the
    turn as in the per-image recipe, reverse those coordinates again. So the source row is a
    function of a alone (even k) or of b alone (odd k), and the column of the other one: the
    flat source index is a per-image (S,) vector in a plus one in b, built in O(n S) and
    broadcast once to (n, S, S).
    """
    n, height, width, channels = batch.shape
    d = draws.to(batch.device)
    last = img_size - 1
    r = torch.arange(img_size, device=batch.device).view(1, -1)
    odd = (d.turns % 2 == 1).view(-1, 1)
    flip_rows = ((d.turns >= 2) ^ d.vflip).view(-1, 1)
    flip_cols = ((d.turns == 1) | (d.turns == 2)) ^ d.mirror
    rows = (d.ys.view(-1, 1) + torch.where(flip_rows, last - r, r)) * width
    cols = d.xs.view(-1, 1) + torch.where(flip_cols.view(-1, 1), last - r, r)
    along_a, along_b = torch.where(odd, cols, rows), torch.where(odd, rows, cols)
    base = torch.arange(n, device=batch.device).view(-1, 1, 1) * (height * width)
    flat = (base + along_a.view(n, img_size, 1) + along_b.view(n, 1, img_size)).reshape(-1)
    return batch.reshape(n * height * width, channels).index_select(0, flat).view(n, img_size, img_size, channels)


def augment_batch(batch: torch.Tensor, img_size: int, cfg: Mapping, gen: torch.Generator) -> torch.Tensor:
    """Draw and apply in one call, for a whole batch on one device."""
    n, h, w, _ = batch.shape
    return apply_augment(batch, draw_augment(n, h, w, img_size, cfg, gen), img_size)
