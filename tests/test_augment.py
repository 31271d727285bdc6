"""Batched augmentation: the same pixels as the per-image recipe it replaced, for every draw.

``per_image_reference`` is the implementation training used before augmentation moved to the
device (a Python loop of crop / flip / rot90 per image), kept here verbatim as the reference:
on the CPU the batched version must give the identical uint8 batch from the same generator.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmars.training.augment import apply_augment, augment_batch, draw_augment


def per_image_reference(batch: torch.Tensor, img_size: int, cfg: dict, gen: torch.Generator) -> torch.Tensor:
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


CONFIGS = [
    {},  # Caffe: random crop + mirror
    {"vflip": True, "rot90": True},
    {"mirror": False, "rot90": True},
    {"random_crop": False, "mirror": False},
    {"random_crop": False, "vflip": True, "rot90": True},
]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "caffe")
def test_batched_augmentation_is_bit_identical_to_the_per_image_recipe(cfg, channels):
    batch = torch.randint(0, 256, (23, 40, 37, channels), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    for seed in range(8):
        expected = per_image_reference(batch, 29, cfg, torch.Generator().manual_seed(seed))
        got = augment_batch(batch, 29, cfg, torch.Generator().manual_seed(seed))
        assert got.dtype == torch.uint8 and got.shape == expected.shape
        assert torch.equal(got, expected), seed


def test_every_turn_and_flip_combination_is_covered():
    """The draws above hit each of the 16 (turn, mirror, vflip) cases; here each one explicitly."""
    batch = torch.arange(2 * 9 * 9, dtype=torch.int64).reshape(2, 9, 9, 1).to(torch.uint8)
    cfg = {"vflip": True, "rot90": True}
    for k in range(4):
        for mirror in (False, True):
            for vflip in (False, True):
                draws = draw_augment(2, 9, 9, 5, cfg, torch.Generator().manual_seed(0))
                draws = type(draws)(draws.ys, draws.xs, torch.tensor([mirror] * 2), torch.tensor([vflip] * 2),
                                    torch.tensor([k, k]))
                got = apply_augment(batch, draws, 5)
                for i in range(2):
                    y, x = int(draws.ys[i]), int(draws.xs[i])
                    crop = batch[i, y:y + 5, x:x + 5]
                    crop = crop.flip(1) if mirror else crop
                    crop = crop.flip(0) if vflip else crop
                    assert torch.equal(got[i], torch.rot90(crop, k, dims=(0, 1))), (k, mirror, vflip)


def test_a_share_of_the_batch_gets_the_draws_of_its_positions():
    """What a distributed run relies on: each process augments its images with the draws they
    have in the global batch, so together the processes produce exactly one process's batch."""
    batch = torch.randint(0, 256, (11, 20, 20, 3), dtype=torch.uint8)
    cfg = {"vflip": True, "rot90": True}
    whole = augment_batch(batch, 16, cfg, torch.Generator().manual_seed(3))
    draws = draw_augment(11, 20, 20, 16, cfg, torch.Generator().manual_seed(3))
    for rank in range(3):
        positions = np.arange(rank, 11, 3)
        share = apply_augment(batch[positions], draws.take(positions), 16)
        assert torch.equal(share, whole[positions])


def test_switching_one_augmentation_on_leaves_the_others_draws_alone():
    draws_off = draw_augment(16, 30, 30, 20, {}, torch.Generator().manual_seed(9))
    draws_on = draw_augment(16, 30, 30, 20, {"rot90": True, "vflip": True}, torch.Generator().manual_seed(9))
    assert torch.equal(draws_off.ys, draws_on.ys) and torch.equal(draws_off.xs, draws_on.xs)
    assert torch.equal(draws_off.mirror, draws_on.mirror)
    assert not draws_off.turns.any() and not draws_off.vflip.any()
    assert draws_on.turns.any() and draws_on.vflip.any()


def test_an_empty_share_gives_an_empty_batch():
    draws = draw_augment(4, 10, 10, 8, {}, torch.Generator().manual_seed(0)).take(np.array([], dtype=np.int64))
    out = apply_augment(torch.empty((0, 10, 10, 3), dtype=torch.uint8), draws, 8)
    assert out.shape == (0, 8, 8, 3)
