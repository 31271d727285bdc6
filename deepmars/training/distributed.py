"""Training on several GPUs or machines with torchrun and DistributedDataParallel (DDP).

``torchrun --nproc_per_node=N train.py <overrides>`` starts N copies of ``train.py``; torchrun sets
RANK, WORLD_SIZE and LOCAL_RANK. Every process builds the same config, data order and model; the
global batch, the iteration count and so the LR recipe mean what they mean in one process:

- each process takes an interleaved share (positions rank, rank + N, ...) of every global batch
  of the same deterministic ``BatchPlan``, and the augmentation draws of those positions;
- the loss of each share is its summed per-image loss over the global batch's denominator (its
  size, or its summed class weights), times N: DDP averages gradients over N processes, so the
  averaged gradient is exactly the single-process gradient of the global batch, even when N does
  not divide the batch or class weights make shares count differently;
- BatchNorm statistics are the global batch's (``batchnorm.convert_batchnorm``);
- process 0 alone creates the MLflow run, the Hydra output folder, checkpoints, validation and
  the final evaluation; the others get a temporary Hydra run folder and write nothing
  (``hydra_ranks.hydra_argv``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def share(self, n: int) -> np.ndarray:
        """Positions of this process's images in a global batch of ``n``."""
        return np.arange(self.rank, n, self.world_size)

    def broadcast(self, obj):
        """Process 0's ``obj`` in every process (a checkpoint to resume from, a path)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over all processes (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(tensor)
        return tensor


SINGLE = Distributed()


def from_environment() -> Distributed:
    """The torchrun job this process belongs to, from RANK / WORLD_SIZE / LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Distributed(rank=int(os.environ["RANK"]), world_size=world,
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


@contextlib.contextmanager
def process_group(d: Distributed, device: torch.device) -> Iterator[None]:
    """NCCL between GPUs, gloo between CPUs; torchrun's environment says where rank 0 listens."""
    if not d.active or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap_model(model: nn.Module, d: Distributed, device: torch.device) -> nn.Module:
    """The module the training step calls: DDP around the global-batch-BatchNorm model.

    DDP broadcasts process 0's weights and buffers when it wraps, so every process starts equal.
    """
    if not d.active:
        return model
    from deepmars.training.batchnorm import convert_batchnorm

    model = convert_batchnorm(model, device)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(net: nn.Module) -> nn.Module:
    """The network inside torch.compile and DDP wrappers."""
    net = getattr(net, "_orig_mod", net)
    return getattr(net, "module", net) if isinstance(net, nn.parallel.DistributedDataParallel) else net


class GlobalBatchLoss:
    """Cross-entropy of the global batch, computed from this process's share of it.

    In one process it is the criterion itself (bit for bit what training always computed).
    """

    def __init__(self, criterion: nn.CrossEntropyLoss, d: Distributed):
        self.criterion, self.dist = criterion, d
        self.per_image = nn.CrossEntropyLoss(weight=criterion.weight, label_smoothing=criterion.label_smoothing,
                                             reduction="none")

    def to(self, device: torch.device) -> GlobalBatchLoss:
        self.criterion.to(device)
        self.per_image.to(device)
        return self

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to back-propagate, the global batch's loss to log)."""
        if not self.dist.active:
            loss = self.criterion(logits, targets)
            return loss, loss.detach()
        numerator = self.per_image(logits, targets).sum()
        weight = self.criterion.weight
        denominator = weight[targets].sum() if weight is not None else torch.tensor(
            float(len(targets)), device=logits.device)
        totals = self.dist.sum(torch.stack([numerator.detach().float(), denominator.float()]))
        # An all-unreadable global batch (denominator 0) gives zero gradients, not NaN weights.
        scale = torch.where(totals[1] > 0, self.dist.world_size / totals[1].clamp_min(1e-12),
                            torch.zeros_like(totals[1]))
        return numerator * scale, totals[0] / totals[1]
