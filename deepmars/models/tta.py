"""Test-time augmentation: label-preserving views of each input, averaged in probability space.

An orbital HiRISE crop has no "up": its 4 rotations and their mirror images (the 8 symmetries of
the square) are all the same landmark. A rover image keeps its "up", so only the horizontal mirror
preserves the label. A model bundle stores its views (``tta``); any runtime applies them the same
way, around the network and never inside it:

    x = expand_views(batch, views)            # (V*N, C, H, W): view-major
    logits = network(x)                       # any runtime
    log_p = combine_views(logits, len(views)) # (N, classes): log of the views' mean softmax

``log_p`` is used wherever logits were: softmax(log_p) is the averaged posterior, and a
temperature T gives softmax(log_p / T) (the averaged posterior raised to 1/T, renormalised).
With the single view ``identity`` this is exactly softmax(logits / T).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from deepmars.errors import ConfigError

# name -> (quarter turns, mirror first); applied to NCHW (or NHWC, see ``spatial_dims``) tensors.
VIEWS = {
    "identity": (0, False), "rot90": (1, False), "rot180": (2, False), "rot270": (3, False),
    "hflip": (0, True), "hflip_rot90": (1, True), "hflip_rot180": (2, True), "hflip_rot270": (3, True),
}
# model.tta presets.
PRESETS = {
    "none": ("identity",),
    "hflip": ("identity", "hflip"),  # rover images: mirror only
    "dihedral": tuple(VIEWS),        # orbital images: all 8 symmetries of the square
}


def views_for(setting: str | Sequence[str] | None) -> tuple[str, ...]:
    """``model.tta`` (a preset name or a list of view names) -> view names; errors name the choices."""
    if setting is None:
        return PRESETS["none"]
    if isinstance(setting, str):
        if setting not in PRESETS:
            raise ConfigError(f"model.tta: {setting!r} is not one of {list(PRESETS)} (or a list of views "
                              f"from {list(VIEWS)})")
        return PRESETS[setting]
    names = tuple(str(v) for v in setting)
    bad = [v for v in names if v not in VIEWS]
    if bad or not names:
        raise ConfigError(f"model.tta: views {bad or '[]'} are not in {list(VIEWS)}")
    return names


def apply_view(x: torch.Tensor, view: str, spatial_dims: tuple[int, int] = (2, 3)) -> torch.Tensor:
    """One view of a batch: mirror (left-right) first, then quarter turns (counter-clockwise, as torch.rot90).

    The turns are written as flips and a transpose, element for element what ``torch.rot90`` gives,
    because the ONNX exporter has no rot90 and the exported graph makes the same views.
    """
    h, w = spatial_dims
    turns, mirror = VIEWS[view]
    if mirror:
        x = x.flip(w)
    if turns == 1:
        x = x.flip(w).transpose(h, w)
    elif turns == 2:
        x = x.flip((h, w))
    elif turns == 3:
        x = x.flip(h).transpose(h, w)
    return x


def expand_views(batch: torch.Tensor, views: Sequence[str]) -> torch.Tensor:
    """(N, C, H, W) -> (V*N, C, H, W), view-major; the memory format of ``batch`` is kept."""
    if len(views) == 1 and views[0] == "identity":
        return batch
    out = torch.cat([apply_view(batch, v) for v in views])
    if batch.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out.contiguous()


def combine_views(logits: torch.Tensor | np.ndarray, n_views: int) -> torch.Tensor | np.ndarray:
    """(V*N, classes) view-major logits -> (N, classes) log of the mean softmax over the views."""
    if n_views == 1:
        return logits
    if isinstance(logits, np.ndarray):
        return combine_views(torch.from_numpy(logits), n_views).numpy()
    z = logits.float().reshape(n_views, -1, logits.shape[-1])
    return torch.logsumexp(torch.log_softmax(z, dim=-1), dim=0) - float(np.log(n_views))
