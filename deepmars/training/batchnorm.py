"""Batch normalisation over the global batch when a training run is split across processes.

With DistributedDataParallel each process sees only its share of a batch; an ordinary BatchNorm
would normalise by that share's statistics, so N processes would train a different network
than one process over the same global batch. On GPUs torch's ``SyncBatchNorm`` fixes this (it
runs only on accelerators); on CPUs (the gloo backend) ``CrossProcessBatchNorm2d`` does the same:
per-channel sums, sums of squares and counts of every share are added by one autograd-aware
all-reduce, so the forward pass and the gradients equal those of one process over the global
batch, up to float rounding. The sums are taken in float64, so the variance computed from them
(E[x^2] - E[x]^2) keeps float32 accuracy.

Conversion keeps every parameter and buffer under its name, so checkpoints and bundles are the
same files as from a single process.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class CrossProcessBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are the global batch's, over all processes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        return self._global_batch_norm(x)

    def _global_batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        xd = x.double()
        count = torch.full((1,), x.numel() // max(channels, 1), dtype=torch.float64, device=x.device)
        local = torch.cat([xd.sum(dim=(0, 2, 3)), (xd * xd).sum(dim=(0, 2, 3)), count])
        with warnings.catch_warnings():
            # Deprecated in favour of _functional_collectives, whose autograd support is recent;
            # this one is differentiable in every torch that deepmars supports.
            warnings.filterwarnings("ignore", message=".*all_reduce is deprecated", category=FutureWarning)
            total = all_reduce(local)
        n = total[2 * channels]
        mean = total[:channels] / n
        var = (total[channels:2 * channels] / n - mean * mean).clamp_min(0.0)
        self._update_running_stats(mean.detach(), var.detach(), float(n.detach()))
        invstd = torch.rsqrt(var + self.eps)
        y = (xd - mean.view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (n / max(n - 1.0, 1.0))  # running_var is unbiased, as nn.BatchNorm2d keeps it
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


class CrossProcessBatchNormAct2d(CrossProcessBatchNorm2d):
    """timm's BatchNormAct2d (norm, then dropout and activation) with global-batch statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of ``module`` synchronised across processes: SyncBatchNorm on GPUs,
    CrossProcessBatchNorm2d on CPUs. Parameters and buffers are shared, not copied."""
    if device.type == "cuda":
        from timm.layers import convert_sync_batchnorm  # knows timm's BatchNormAct2d too

        return convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CrossProcessBatchNorm2d):
        act = getattr(module, "act", None)
        cls = CrossProcessBatchNormAct2d if act is not None else CrossProcessBatchNorm2d
        out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if act is not None:
            out.drop, out.act = module.drop, module.act
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out
