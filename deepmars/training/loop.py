"""The optimisation loop: iterations, periodic validation, best model, checkpoints, progress.

Everything random in iteration ``i`` is seeded from (seed, i) (data order, augmentation,
dropout), so a run resumed from a checkpoint reaches the same weights as one never stopped.

On a GPU the step never waits for the host: uint8 batches travel in pinned memory without
blocking, augmentation and normalisation run on the device, and the loss is read back only when
it is logged (every ``log_every`` iterations), not after every step.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from deepmars.data.cache import DecodedImages
from deepmars.data.transforms import Preprocess
from deepmars.devices import autocast, grad_scaler, model_device, to_cpu, to_device
from deepmars.inference.logits import predict_logits
from deepmars.training.augment import apply_augment, draw_augment
from deepmars.training.batches import Batch
from deepmars.training.checkpoint import BEST, LATEST, rng_state, save_atomic
from deepmars.training.distributed import SINGLE, Distributed, GlobalBatchLoss

log = logging.getLogger(__name__)

MetricSink = Callable[[dict[str, float], int], None]
# Dropout seeds of processes other than 0 are offset by this times their rank: each process draws
# its own masks for its share (process 0 draws exactly what a single process would).
RANK_SEED_STRIDE = 104_729


@dataclass
class LoopState:
    iteration: int = 0
    best_metric: float = -math.inf
    best_iter: int = -1
    failed_checkpoints: int = 0
    corrupt: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"iteration": self.iteration, "best_metric": self.best_metric, "best_iter": self.best_iter,
                "failed_checkpoints": self.failed_checkpoints, "corrupt": self.corrupt}


@dataclass
class Loop:
    model: nn.Module  # the network itself: what checkpoints, validation and the bundle hold
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: nn.Module
    preprocess: Preprocess
    augment: Mapping
    seed: int
    max_iters: int
    eval_every: int
    checkpoint_every: int
    log_every: int
    checkpoint_dir: Path
    checkpoint_extra: dict  # config identity, run id: stored in every checkpoint
    val: DecodedImages | None = None
    eval_batch_size: int = 100
    sink: MetricSink = lambda metrics, step: None
    progress: str = "auto"
    state: LoopState = field(default_factory=LoopState)
    precision: str = "32"  # "32", "bf16" or "16" (autocast; fp16 with a gradient scaler)
    net: nn.Module | None = None  # what a training step calls: ``model`` inside DDP / torch.compile
    dist: Distributed = SINGLE

    def __post_init__(self) -> None:
        self.device = model_device(self.model)
        self.net = self.net if self.net is not None else self.model
        self.loss = GlobalBatchLoss(self.criterion, self.dist).to(self.device)
        self.scaler = grad_scaler(self.device, self.precision)

    def step(self, batch: Batch, it: int) -> torch.Tensor:
        """One optimisation step on this process's share of global batch ``it``; returns the
        global batch's loss as a device tensor (read back only when logged)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + it)
        torch.manual_seed(self.seed * 7_919 + it + RANK_SEED_STRIDE * self.dist.rank)  # dropout / stochastic depth
        images = batch.images
        n, h, w, _ = images.shape
        draws = draw_augment(n if batch.positions is None else batch.size, h, w, self.preprocess.img_size,
                             self.augment, gen)
        if batch.positions is not None:
            draws = draws.take(batch.positions)
        x = apply_augment(to_device(images, self.device), draws, self.preprocess.img_size)
        x = self.preprocess.normalize(x)
        targets = to_device(batch.targets, self.device)
        self.net.train()
        with autocast(self.device, self.precision):
            loss, shown = self.loss(self.net(x), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with warnings.catch_warnings():
            # fp16: the scaler skips the optimizer step after an overflow; the LR schedule moves on,
            # as for a batch of unreadable images, and torch's "scheduler before optimizer" note is moot.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            self.scheduler.step()
        return shown

    def run(self, batches: Iterator[Batch]) -> LoopState:
        st = self.state
        main = self.dist.is_main
        bar = _Progress(self.progress if main else "off", st.iteration, self.max_iters, self.log_every)
        pending: dict[int, dict[str, float | torch.Tensor]] = {}
        for batch in batches:
            it = st.iteration
            for path, reason in batch.failures:
                log.warning("skipping unreadable image %s: %s", path, reason)
                st.corrupt.append([path, reason])
            lr = self.optimizer.param_groups[0]["lr"]
            if batch.images is not None:
                loss = self.step(batch, it)
            else:  # every image of this batch unreadable: no update, but the LR schedule moves on
                loss = float("nan")
                self.scheduler.step()
            st.iteration = it + 1
            pending[it] = {"train_loss": loss, "lr": lr}
            shown = 0 if batch.images is None else (batch.size if self.dist.active else len(batch.images))
            bar.update(loss, lr, shown)
            checkpoint = st.iteration % self.checkpoint_every == 0 or st.iteration == self.max_iters
            # Metrics up to a checkpoint are always flushed first, so a killed run resumed from
            # that checkpoint has no gap in its curves.
            if checkpoint or st.iteration % self.log_every == 0:
                self._flush(pending)
            if st.iteration % self.eval_every == 0 or st.iteration == self.max_iters:
                self._validate(st.iteration, bar)
            if checkpoint:
                self.save_checkpoint()
        bar.close()
        return st

    def _flush(self, pending: dict[int, dict[str, float | torch.Tensor]]) -> None:
        for step, metrics in sorted(pending.items()):
            self.sink({k: float(v) for k, v in metrics.items()}, step)
        pending.clear()

    def _validate(self, iteration: int, bar: _Progress) -> None:
        if not self.dist.is_main or self.val is None or len(self.val) == 0:
            return
        logits = predict_logits(self.model, self.val.images, self.preprocess, self.eval_batch_size,
                                precision=self.precision)
        targets = torch.from_numpy(self.val.targets)
        acc = float((logits.argmax(1) == targets).float().mean())
        loss = float(nn.functional.cross_entropy(logits, targets))
        self.sink({"val_acc": acc, "val_loss": loss}, iteration)
        bar.note(f"iteration {iteration}: val_acc {acc:.4f} val_loss {loss:.4f}")
        if acc > self.state.best_metric:
            self.state.best_metric, self.state.best_iter = acc, iteration
            save_atomic({"model": to_cpu(self.model.state_dict()), "iteration": iteration, "val_acc": acc},
                        self.checkpoint_dir / BEST)

    def save_checkpoint(self) -> None:
        """Process 0 writes; every tensor goes to the CPU first, so the file loads on any machine."""
        if not self.dist.is_main:
            return
        obj = {"format": "deepmars-checkpoint/1", "model": self.model.state_dict(),
               "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
               "rng": rng_state(), "state": self.state.to_dict(), **self.checkpoint_extra}
        if self.scaler.is_enabled():
            obj["grad_scaler"] = self.scaler.state_dict()
        if not save_atomic(to_cpu(obj), self.checkpoint_dir / LATEST):
            self.state.failed_checkpoints += 1

    def restore(self, ckpt: dict) -> None:
        """Load a checkpoint written on any device; the optimizer state follows the model's device."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler.is_enabled() and "grad_scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["grad_scaler"])
        s = ckpt["state"]
        self.state = LoopState(int(s["iteration"]), float(s["best_metric"]), int(s["best_iter"]),
                               int(s["failed_checkpoints"]), [list(c) for c in s["corrupt"]])


class _Progress:
    """A tqdm bar on a terminal; periodic log lines (iteration, loss, img/s, ETA) otherwise."""

    def __init__(self, mode: str, start: int, total: int, log_every: int):
        """``mode``: auto, bar, log, or off (processes other than 0 of a distributed run)."""
        self.silent = mode == "off"
        use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True) if use_bar else None
        self.start_time, self.images, self.it, self.total, self.every = time.perf_counter(), 0, start, total, log_every
        self.start_it = start

    def update(self, loss: float | torch.Tensor, lr: float, n_images: int) -> None:
        """The loss is read (a device sync on a GPU) only when a line or the bar's postfix shows it."""
        self.it += 1
        self.images += n_images
        due = self.it % self.every == 0 or self.it == self.total
        if self.silent:
            return
        rate = self.images / max(time.perf_counter() - self.start_time, 1e-9)
        if self.bar is not None:
            if due:
                self.bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}", refresh=False)
            self.bar.update(1)
        elif due:
            done = self.it - self.start_it
            eta = (time.perf_counter() - self.start_time) / max(done, 1) * (self.total - self.it)
            log.info("iteration %d/%d loss %.4f lr %.2e %.1f img/s ETA %s", self.it, self.total, float(loss), lr,
                     rate, time.strftime("%H:%M:%S", time.gmtime(eta)))

    def note(self, text: str) -> None:
        (self.bar.write if self.bar is not None else log.info)(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
