"""Weight-space ensembling of the starting model and the fine-tuned one (WiSE-FT).

Wortsman et al. (CVPR 2022, "Robust fine-tuning of zero-shot models") interpolate every weight,
theta(alpha) = (1 - alpha) * theta_start + alpha * theta_fine_tuned, and find that intermediate
alphas keep the fine-tuned accuracy in distribution while holding up better under distribution
shift. Here theta_start is the model as fine-tuning began (the pretrained backbone with its
linear-probe head under LP-FT), saved when training starts; alpha is chosen on val, never on test.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from deepmars.data.cache import DecodedImages
from deepmars.data.transforms import Preprocess
from deepmars.errors import ConfigError
from deepmars.inference.logits import predict_logits

log = logging.getLogger(__name__)

START = "start.pt"  # in the checkpoint folder, beside best.pt: the weights fine-tuning started from


def check_alphas(alphas: Sequence[float]) -> list[float]:
    values = [float(a) for a in alphas]
    if not values or any(not 0.0 <= a <= 1.0 for a in values):
        raise ConfigError(f"trainer.wise_ft_alphas: a non-empty list of numbers in [0, 1], got {list(alphas)}")
    return values


def interpolate(start: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * start + alpha * tuned for every floating tensor; counters come from ``tuned``."""
    if set(start) != set(tuned):
        raise ValueError(f"state dicts differ in keys: {sorted(set(start) ^ set(tuned))[:3]}")
    out = {}
    for k, t in tuned.items():
        if t.is_floating_point():
            out[k] = torch.lerp(start[k].to(t), t, alpha)  # the start is read back on the CPU
        else:
            out[k] = t.clone()
    return out


def choose_alpha(model: nn.Module, start: Mapping[str, torch.Tensor], val: DecodedImages, pre: Preprocess,
                 alphas: Sequence[float], batch_size: int = 100) -> tuple[float, dict[str, float]]:
    """Load the interpolation with the best val accuracy into ``model``; returns (alpha, metrics).

    Ties go to the alpha listed first.
    """
    tuned = {k: v.detach().clone() for k, v in model.state_dict().items()}
    targets = torch.from_numpy(val.targets)
    scores: dict[float, float] = {}
    for a in check_alphas(alphas):
        model.load_state_dict(interpolate(start, tuned, a))
        logits = predict_logits(model, val.images, pre, batch_size)
        scores[a] = float((logits.argmax(1) == targets).float().mean())
        log.info("WiSE-FT alpha %.2f: val_acc %.4f", a, scores[a])
    best = max(scores, key=lambda a: (scores[a], -list(scores).index(a)))
    model.load_state_dict(interpolate(start, tuned, best))
    metrics = {f"wise_ft_val_acc_alpha_{a:g}": v for a, v in scores.items()}
    metrics.update({"wise_ft_alpha": best, "wise_ft_val_acc": scores[best]})
    return best, metrics


def load_start(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    from deepmars.training.checkpoint import load_checkpoint

    return load_checkpoint(Path(checkpoint_dir) / START)["model"]
