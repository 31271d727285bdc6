"""Decoding each image once into a uint8 array, so training is bound by the model, not JPEG.

HiRISE at 227x227 gray is about 200 MB, MSL at 256x256 RGB about 1.3 GB. Images that cannot be
decoded are reported with their path and reason and left out; the rest are kept.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deepmars.data.dataset import Sample
from deepmars.data.transforms import Preprocess
from deepmars.errors import ImageError

log = logging.getLogger(__name__)


@dataclass
class DecodedImages:
    images: np.ndarray  # (N, resize, resize, channels) uint8
    targets: np.ndarray  # (N,) int64
    samples: list[Sample]  # the samples kept, aligned with images
    failures: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


def _decode_one(args: tuple[Path, Preprocess]) -> np.ndarray | str:
    path, pre = args
    try:
        return pre.decode(path)
    except ImageError as exc:
        return exc.reason


def decode_samples(samples: list[Sample], pre: Preprocess, workers: int = 0,
                   desc: str = "decode", progress: bool = True) -> DecodedImages:
    """All ``samples`` decoded into one array; failures listed, never fatal."""
    out = np.empty((len(samples), pre.resize, pre.resize, pre.channels), dtype=np.uint8)
    kept: list[int] = []
    failures: list[tuple[Path, str]] = []
    jobs = ((s.path, pre) for s in samples)
    pool = ProcessPoolExecutor(workers) if workers > 0 else None
    results = pool.map(_decode_one, jobs, chunksize=64) if pool else map(_decode_one, jobs)
    try:
        bar = tqdm(results, total=len(samples), desc=desc, unit="img", disable=not progress, leave=False)
        for i, res in enumerate(bar):
            if isinstance(res, str):
                failures.append((samples[i].path, res))
                log.warning("skipping unreadable image %s: %s", samples[i].path, res)
                continue
            out[len(kept)] = res
            kept.append(i)
    finally:
        if pool:
            pool.shutdown()
    images = out[:len(kept)] if len(kept) < len(samples) else out
    return DecodedImages(images=images, targets=np.array([samples[i].target for i in kept], dtype=np.int64),
                         samples=[samples[i] for i in kept], failures=failures)
