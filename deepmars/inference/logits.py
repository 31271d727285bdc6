"""Logits of a network for decoded images, in batches: what validation, evaluation and WiSE-FT share."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepmars.data.transforms import Preprocess
from deepmars.devices import autocast, model_device
from deepmars.models.tta import combine_views, expand_views


@torch.inference_mode()
def predict_logits(model: nn.Module, images: np.ndarray, pre: Preprocess, batch_size: int = 100,
                   views: tuple[str, ...] = ("identity",), precision: str = "32") -> torch.Tensor:
    """Logits (float32, on the CPU) for decoded uint8 images (centre crop), in batches, on the
    model's own device; the model is left in eval mode.

    With test-time views (deepmars.models.tta) the result is the log of the views' mean softmax,
    which stands in for logits everywhere (temperature scaling included)."""
    model.eval()
    device = model_device(model)
    out = []
    for i in range(0, len(images), batch_size):
        with autocast(device, precision):
            z = model(expand_views(pre.eval_batch(images[i:i + batch_size], device), views))
        out.append(combine_views(z.float(), len(views)))
    if not out:
        return torch.empty((0, 0))
    return torch.cat(out).cpu()
