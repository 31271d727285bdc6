"""Which images make up iteration ``i``: a pure function of (seed, i), so resume is exact.

Each epoch's order is drawn from a generator seeded by (seed, epoch); iteration ``i`` takes a
fixed slice of it. Nothing about the data order needs saving beyond the iteration number, and
a resumed run sees exactly the batches an uninterrupted run would have seen.

In a distributed run every process plans the same global batches and takes its share
(``Distributed.share``); a ``Batch`` says where its images sit in the global batch, so each
image gets the augmentation it would get in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import Sample
from deepmars.data.transforms import Preprocess
from deepmars.errors import ImageError
from deepmars.training.distributed import SINGLE, Distributed


def class_balance_weights(targets: np.ndarray) -> np.ndarray:
    """Per-sample weights so every class is drawn equally often in expectation."""
    counts = np.bincount(targets)
    return 1.0 / counts[targets]


class BatchPlan:
    def __init__(self, n: int, batch_size: int, seed: int, sample_weights: np.ndarray | None = None):
        self.n = n
        self.batch_size = min(batch_size, n)
        self.seed = seed
        self.weights = None if sample_weights is None else torch.as_tensor(sample_weights, dtype=torch.float64)
        self.iters_per_epoch = max(1, n // self.batch_size)
        self._cache: tuple[int, torch.Tensor] | None = None

    def _order(self, epoch: int) -> torch.Tensor:
        if self._cache is None or self._cache[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            if self.weights is None:
                order = torch.randperm(self.n, generator=gen)
            else:
                order = torch.multinomial(self.weights, self.n, replacement=True, generator=gen)
            self._cache = (epoch, order)
        return self._cache[1]

    def indices(self, iteration: int) -> np.ndarray:
        epoch, b = divmod(iteration, self.iters_per_epoch)
        return self._order(epoch)[b * self.batch_size:(b + 1) * self.batch_size].numpy()


class Batch(NamedTuple):
    """This process's images of one global batch."""

    images: torch.Tensor | None  # uint8 NHWC; None when every image was unreadable
    targets: torch.Tensor | None
    failures: list  # (path, reason) of unreadable images
    positions: np.ndarray | None = None  # their places in the global batch; None: all of it, in order
    size: int = 0  # images planned in the global batch


def memory_batches(data: DecodedImages, plan: BatchPlan, start: int, stop: int,
                   dist: Distributed = SINGLE) -> Iterator[Batch]:
    """Batches from the decoded-image cache (never unreadable: those were dropped when decoding)."""
    for it in range(start, stop):
        idx = np.sort(plan.indices(it))
        positions = dist.share(len(idx)) if dist.active else None
        mine = idx if positions is None else idx[positions]
        yield Batch(torch.from_numpy(data.images[mine]), torch.from_numpy(data.targets[mine]), [], positions,
                    len(idx))


class _FileDataset(Dataset):
    """Decodes one image per key: a sample index, or (sample index, position in the global batch)."""

    def __init__(self, samples: list[Sample], pre: Preprocess):
        self.samples, self.pre = samples, pre

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        i, position = key if isinstance(key, tuple) else (key, None)
        s = self.samples[i]
        try:
            return self.pre.decode(s.path), s.target, None, position
        except ImageError as exc:
            return None, s.target, (str(s.path), exc.reason), position


class _Collate:
    """Stacks the readable images; in a distributed run, also their positions, and an empty batch
    (not None) when a share is all unreadable, so every process still takes part in the step."""

    def __init__(self, pre: Preprocess, distributed: bool):
        self.pre, self.distributed = pre, distributed

    def __call__(self, items) -> Batch:
        good = [it for it in items if it[0] is not None]
        failures = [it[2] for it in items if it[0] is None]
        positions = np.array([g[3] for g in good], dtype=np.int64) if self.distributed else None
        if not good:
            if not self.distributed:
                return Batch(None, None, failures)
            empty = torch.empty((0, self.pre.resize, self.pre.resize, self.pre.channels), dtype=torch.uint8)
            return Batch(empty, torch.empty((0,), dtype=torch.int64), failures, positions)
        images = torch.from_numpy(np.stack([g[0] for g in good]))
        return Batch(images, torch.tensor([g[1] for g in good], dtype=torch.int64), failures, positions)


def streaming_batches(samples: list[Sample], pre: Preprocess, plan: BatchPlan, start: int, stop: int,
                      workers: int, dist: Distributed = SINGLE) -> Iterator[Batch]:
    """Batches decoded on the fly in worker processes; unreadable images dropped and reported."""
    keys, sizes = [], []
    for it in range(start, stop):
        idx = np.sort(plan.indices(it))
        sizes.append(len(idx))
        if dist.active:
            positions = dist.share(len(idx))
            keys.append([(int(idx[p]), int(p)) for p in positions])
        else:
            keys.append(idx.tolist())
    loader = DataLoader(_FileDataset(samples, pre), batch_sampler=keys, num_workers=workers,
                        collate_fn=_Collate(pre, dist.active), persistent_workers=False)
    for batch, size in zip(loader, sizes, strict=True):
        yield batch._replace(size=size)
