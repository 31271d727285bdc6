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
from dataclasses import dataclass, field

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from deepmars.config import ScheduleConfig
from deepmars.errors import ConfigError


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


def build_scheduler(optimizer: Optimizer, cfg: ScheduleConfig, max_iters: int) -> LambdaLR:
    """A LambdaLR for the validated ``schedule`` config; step it once per optimizer step."""
    return LambdaLR(optimizer, lr_factor(cfg, max_iters))


def lr_factor(cfg: ScheduleConfig, max_iters: int) -> LRFactor:
    """The multiplier for ``cfg`` over a run of ``max_iters`` iterations (plain values only: it is
    saved in checkpoints, which load with ``weights_only=True``)."""
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ConfigError(f"trainer.max_iters: the training length must be a positive number of iterations, "
                          f"got {max_iters!r}")
    factor = LRFactor(policy=str(cfg.policy), max_iters=max_iters, gamma=float(cfg.gamma),
                      min_lr_ratio=float(cfg.min_lr_ratio), warmup_iters=int(cfg.warmup_iters),
                      warmup_start_ratio=float(cfg.warmup_start_ratio))
    if cfg.policy == "step":
        factor.stepsize = int(cfg.stepsize)
    if cfg.policy == "multistep":
        factor.milestones = [int(m) for m in cfg.milestones]
    return factor
