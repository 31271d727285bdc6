"""Optimizer parameter groups from per-layer LR multipliers, as Caffe's ``lr_mult`` did.

The paper fine-tuned with the new final layer at 25x (MSL) or 10x (HiRISE) the base LR and every
other layer at 1x. Here ``lr_mult`` maps parameter-name patterns to multipliers:

- fnmatch globs over ``named_parameters()`` names (``classifier.*``, ``blocks.[0-2].*``); a pattern
  without a glob also matches everything under that module (``features.0`` = ``features.0.*``);
- the key ``head``: the model's final layer, wherever the backbone keeps it;
- the last matching pattern wins; unmatched parameters get 1; 0 freezes.

Optionally the Caffe convention for biases: ``bias_lr_mult`` (Caffe used 2) and no weight decay.
Each group carries its ``name`` and ``lr_mult``; LR schedules scale every group by the same
factor, so the ratios set here hold for the whole run.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping

from torch import nn

from deepmars.errors import ConfigError

log = logging.getLogger(__name__)

HEAD_KEY = "head"
DEFAULT_GROUP = "default"


def build_param_groups(model: nn.Module, base_lr: float, weight_decay: float,
                       lr_mult: Mapping[str, float], *, bias_lr_mult: float = 1.0,
                       bias_decay: bool = True, head_prefix: str | None = None) -> list[dict]:
    """Optimizer param groups, in the order their first parameter appears in the model.

    Frozen parameters (multiplier 0) get ``requires_grad = False`` and are left out. A pattern
    that matches no parameter is an error: a typo would otherwise train at the wrong LR silently.
    """
    patterns = _check_patterns(lr_mult, head_prefix, bias_lr_mult)
    names = [name for name, _ in model.named_parameters()]
    winners = {name: _winner(name, patterns) for name in names}
    _check_all_match(patterns, names)
    groups: dict[str, dict] = {}
    frozen = []
    for name, param in model.named_parameters():
        pattern = winners[name]
        mult = 1.0 if pattern is None else patterns[pattern][1]
        param.requires_grad_(mult > 0)
        if mult == 0:
            frozen.append((name, param.numel()))
            continue
        is_bias = _is_bias(name) and (bias_lr_mult != 1.0 or not bias_decay)
        key = (pattern or DEFAULT_GROUP) + ("/bias" if is_bias else "")
        if key not in groups:
            total = mult * (bias_lr_mult if is_bias else 1.0)
            groups[key] = {"name": key, "params": [], "param_names": [], "lr": base_lr * total,
                           "lr_mult": total, "weight_decay": 0.0 if is_bias and not bias_decay else weight_decay}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if frozen:
        log.info("frozen (lr_mult 0, not trained): %d tensors, %d parameters",
                 len(frozen), sum(n for _, n in frozen))
    if not groups:
        raise ConfigError("optim.lr_mult freezes every parameter: nothing left to train")
    return list(groups.values())


def describe_param_groups(groups: list[dict]) -> str:
    """A table of the groups (name, tensors, parameters, LR, weight decay) for the start-of-run log."""
    rows = [("group", "tensors", "params", "lr", "weight_decay")]
    for g in groups:
        rows.append((g.get("name", "?"), str(len(g["params"])), f"{sum(p.numel() for p in g['params']):,}",
                     f"{g['lr']:.4g}", f"{g.get('weight_decay', 0.0):.4g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    return "\n".join(lines)


def _check_patterns(lr_mult: Mapping[str, float], head_prefix: str | None,
                    bias_lr_mult: float) -> dict[str, tuple[str, float]]:
    """pattern -> (glob, multiplier), in config order; ``head`` resolved to the head's glob."""
    if isinstance(bias_lr_mult, bool) or not isinstance(bias_lr_mult, (int, float)) or bias_lr_mult <= 0:
        raise ConfigError(f"optim.bias_lr_mult must be a positive number, got {bias_lr_mult!r}")
    patterns = {}
    for pattern, mult in (lr_mult or {}).items():
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or mult < 0:
            raise ConfigError(f"optim.lr_mult.{pattern}: multiplier must be a number >= 0, got {mult!r}")
        if pattern == HEAD_KEY:
            if not head_prefix:
                raise ConfigError(f"optim.lr_mult.{HEAD_KEY}: the model's final layer is unknown here "
                                  "(pass head_prefix, from deepmars.models.factory.head_prefix)")
            patterns[pattern] = (head_prefix, float(mult))
        else:
            patterns[str(pattern)] = (str(pattern), float(mult))
    return patterns


def _matches(name: str, glob: str) -> bool:
    return fnmatch.fnmatchcase(name, glob) or fnmatch.fnmatchcase(name, glob + ".*")


def _winner(name: str, patterns: dict[str, tuple[str, float]]) -> str | None:
    """The last pattern (in config order) that matches ``name``, or None."""
    hits = [pattern for pattern, (glob, _) in patterns.items() if _matches(name, glob)]
    return hits[-1] if hits else None


def _check_all_match(patterns: dict[str, tuple[str, float]], names: list[str]) -> None:
    for pattern, (glob, _) in patterns.items():
        if not any(_matches(name, glob) for name in names):
            examples = names if len(names) <= 5 else names[:3] + ["..."] + names[-2:]
            raise ConfigError(f"optim.lr_mult: pattern {pattern!r} matches no parameter; "
                              f"parameter names look like: {', '.join(examples)}")


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"
