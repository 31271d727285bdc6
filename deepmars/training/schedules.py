"""LR policies by iteration, as multipliers of each parameter group's initial LR.

Caffe's ``step`` policy (the paper's: LR x gamma every ``stepsize`` iterations), ``multistep``,
``cosine`` and ``constant``, each optionally preceded by a linear warmup. One multiplier scales
every group, so the per-layer ratios from ``lr_mult`` hold throughout. Built on
:class:`torch.optim.lr_scheduler.LambdaLR`: its ``state_dict`` holds the iteration and the policy,
so a resumed run continues at exactly the same LR.

Iteration ``it`` counts optimizer steps from 0, as Caffe's ``iter`` did: the scheduler is stepped
once after each optimizer step, and LR at iteration ``it`` is ``initial_lr * factor(it)``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from deepmars.errors import ConfigError

POLICIES = ("step", "multistep", "cosine", "constant")
CFG_KEYS = ("policy", "stepsize", "gamma", "milestones", "min_lr_ratio", "warmup_iters", "warmup_start_ratio")


@dataclass
class LRFactor:
    """The LR multiplier at a given iteration. A callable object (not a closure) so that
    LambdaLR's state_dict saves these settings along with the iteration count."""

    policy: str
    max_iters: int
    stepsize: int = 0
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)
    min_lr_ratio: float = 0.0
    warmup_iters: int = 0
    warmup_start_ratio: float = 0.0

    def __call__(self, it: int) -> float:
        return self.warmup(it) * self.decay(it)

    def decay(self, it: int) -> float:
        if self.policy == "step":
            return self.gamma ** (it // self.stepsize)
        if self.policy == "multistep":
            return self.gamma ** bisect.bisect_right(self.milestones, it)
        if self.policy == "cosine":
            t = min(it, self.max_iters) / self.max_iters
            return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    def warmup(self, it: int) -> float:
        """Linear ramp from warmup_start_ratio (iteration 0) to 1 (iteration warmup_iters)."""
        if it >= self.warmup_iters:
            return 1.0
        return self.warmup_start_ratio + (1.0 - self.warmup_start_ratio) * it / self.warmup_iters


def build_scheduler(optimizer: Optimizer, cfg: Mapping, max_iters: int) -> LambdaLR:
    """A LambdaLR for the ``schedule`` config; step it once per optimizer step."""
    return LambdaLR(optimizer, lr_factor(cfg, max_iters))


def lr_factor(cfg: Mapping, max_iters: int) -> LRFactor:
    """Validate the ``schedule`` config; errors name the key and the allowed values."""
    values = {k: v for k, v in _plain(cfg).items() if v is not None}
    unknown = sorted(set(values) - set(CFG_KEYS))
    if unknown:
        raise ConfigError(f"schedule.{unknown[0]}: unknown key; allowed keys: {', '.join(CFG_KEYS)}")
    policy = values.get("policy")
    if policy not in POLICIES:
        raise ConfigError(f"schedule.policy: {policy!r} is not one of {', '.join(POLICIES)}")
    _positive_int(max_iters, "max_iters (trainer length in iterations)")
    factor = LRFactor(policy=policy, max_iters=max_iters,
                      gamma=_number(values, "gamma", 0.1, low=0.0, low_open=True),
                      min_lr_ratio=_number(values, "min_lr_ratio", 0.0, low=0.0, high=1.0),
                      warmup_iters=_count(values, "warmup_iters", 0),
                      warmup_start_ratio=_number(values, "warmup_start_ratio", 0.0, low=0.0, high=1.0))
    if policy == "step":
        factor.stepsize = _positive_int(values.get("stepsize"), "schedule.stepsize")
    if policy == "multistep":
        factor.milestones = _milestones(values.get("milestones"))
    return factor


def _plain(cfg: Mapping) -> dict:
    """A plain dict (lists, not ListConfigs) from a dict or an OmegaConf DictConfig."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return dict(OmegaConf.to_container(cfg, resolve=True))
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"schedule config must be a mapping, got {type(cfg).__name__}")
    return dict(cfg)


def _number(values: dict, key: str, default: float, *, low: float, high: float | None = None,
            low_open: bool = False) -> float:
    value = values.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (
        value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bounds = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and <= {high}")
        raise ConfigError(f"schedule.{key} must be a number {bounds}, got {value!r}")
    return float(value)


def _count(values: dict, key: str, default: int) -> int:
    value = values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"schedule.{key} must be an integer >= 0, got {value!r}")
    return value


def _positive_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return value


def _milestones(value: object) -> list[int]:
    items = list(value) if isinstance(value, (list, tuple)) else None
    if not items or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in items) \
            or items != sorted(set(items)):
        raise ConfigError(f"schedule.milestones must be a non-empty increasing list of positive "
                          f"iterations for policy multistep, got {value!r}")
    return items
