"""A trained model bundle made ready for inference, and its calibrated probabilities for images."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from deepmars.catalog.rows import ModelInfo
from deepmars.devices import model_device
from deepmars.models.bundle import ModelBundle


@contextlib.contextmanager
def prepared(bundle: ModelBundle, threads: int | None, device: torch.device | None = None) -> Iterator[ModelBundle]:
    """Eval mode, channels_last, on ``device`` (default: where it is), ``threads`` torch threads;
    the thread count is restored afterwards.

    A library call leaves the process as it found it: a notebook that classifies one batch keeps
    its own thread setting.
    """
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    bundle.model.eval()
    bundle.model.to(device=device, memory_format=torch.channels_last)
    try:
        yield bundle
    finally:
        torch.set_num_threads(threads_before)


def model_info(bundle: ModelBundle) -> ModelInfo:
    """What the catalog records about the model that wrote its rows."""
    return ModelInfo(model_id=bundle.model_id, class_names=list(bundle.class_names),
                     dataset=bundle.dataset.get("name"), temperature=bundle.temperature,
                     preprocess=bundle.preprocess.to_dict(), model_cfg=dict(bundle.model_cfg))


def probabilities(bundle: ModelBundle, pixels: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (N, classes) for decoded uint8 images (N, H, W[, C]), the bundle's preprocessing."""
    with warnings.catch_warnings():
        # Arrays unpickled from a worker are read-only; preprocessing only reads them: no copy.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        batch = bundle.preprocess.eval_batch(pixels, model_device(bundle.model))
    return bundle.predict_proba(batch)
