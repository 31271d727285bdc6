"""Which images make up iteration ``i``: a pure function of (seed, i), so resume is exact.

Each epoch's order is drawn from a generator seeded by (seed, epoch); iteration ``i`` takes a
fixed slice of it. Nothing about the data order needs saving beyond the iteration number, and
a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import Sample
from deepmars.data.transforms import Preprocess
from deepmars.errors import ImageError


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


def memory_batches(data: DecodedImages, plan: BatchPlan, start: int, stop: int) -> Iterator[tuple]:
    """Batches from the decoded-image cache: (uint8 NHWC, targets, failures=[])."""
    for it in range(start, stop):
        idx = np.sort(plan.indices(it))
        yield torch.from_numpy(data.images[idx]), torch.from_numpy(data.targets[idx]), []


class _FileDataset(Dataset):
    def __init__(self, samples: list[Sample], pre: Preprocess):
        self.samples, self.pre = samples, pre

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        try:
            return self.pre.decode(s.path), s.target, None
        except ImageError as exc:
            return None, s.target, (str(s.path), exc.reason)


def _collate(items):
    good = [it for it in items if it[0] is not None]
    failures = [it[2] for it in items if it[0] is None]
    if not good:
        return None, None, failures
    images = torch.from_numpy(np.stack([g[0] for g in good]))
    return images, torch.tensor([g[1] for g in good], dtype=torch.int64), failures


def streaming_batches(samples: list[Sample], pre: Preprocess, plan: BatchPlan, start: int, stop: int,
                      workers: int) -> Iterator[tuple]:
    """Batches decoded on the fly in worker processes; unreadable images dropped and reported."""
    batch_lists = [np.sort(plan.indices(it)).tolist() for it in range(start, stop)]
    loader = DataLoader(_FileDataset(samples, pre), batch_sampler=batch_lists, num_workers=workers,
                        collate_fn=_collate, persistent_workers=False)
    yield from loader
