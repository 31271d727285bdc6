"""A trained model bundle made ready for eager inference: eval mode, channels_last, its thread count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from deepmars.models.bundle import ModelBundle


@contextlib.contextmanager
def prepared(bundle: ModelBundle, threads: int | None, device: torch.device | None = None) -> Iterator[ModelBundle]:
    """Eval mode, channels_last, on ``device`` (default: where it is), ``threads`` torch threads;
    the thread count is restored afterwards.

    A library call leaves the process as it found it: a notebook that classifies one batch keeps
    its own thread setting.
    """
    bundle.model.eval()
    bundle.model.to(device=device, memory_format=torch.channels_last)
    with torch_threads(threads):
        yield bundle


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """``threads`` torch threads inside the block (None: as they are), the count before restored after it."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
