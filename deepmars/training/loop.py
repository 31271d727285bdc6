"""The optimisation loop: iterations, periodic validation, best model, checkpoints, progress.

Everything random in iteration ``i`` is seeded from (seed, i) (data order, augmentation,
dropout), so a run resumed from a checkpoint reaches the same weights as one never stopped.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deepmars.data.cache import DecodedImages
from deepmars.data.transforms import Preprocess
from deepmars.models.tta import combine_views, expand_views
from deepmars.training.augment import augment_batch
from deepmars.training.checkpoint import BEST, LATEST, rng_state, save_atomic

log = logging.getLogger(__name__)

MetricSink = Callable[[dict[str, float], int], None]


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
    model: nn.Module
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

    def step(self, images_u8: torch.Tensor, targets: torch.Tensor, it: int) -> float:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + it)
        torch.manual_seed(self.seed * 7_919 + it)  # dropout / stochastic depth
        x = augment_batch(images_u8, self.preprocess.img_size, self.augment, gen)
        x = self.preprocess.normalize(x)
        self.model.train()
        loss = self.criterion(self.model(x), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def run(self, batches: Iterator[tuple]) -> LoopState:
        st = self.state
        bar = _Progress(self.progress, st.iteration, self.max_iters, self.log_every)
        pending: dict[int, dict[str, float]] = {}
        for images, targets, failures in batches:
            it = st.iteration
            for path, reason in failures:
                log.warning("skipping unreadable image %s: %s", path, reason)
                st.corrupt.append([path, reason])
            lr = self.optimizer.param_groups[0]["lr"]
            if images is not None:
                loss = self.step(images, targets, it)
            else:  # every image of this batch unreadable: no update, but the LR schedule moves on
                loss = float("nan")
                self.scheduler.step()
            st.iteration = it + 1
            pending[it] = {"train_loss": loss, "lr": lr}
            bar.update(loss, lr, 0 if images is None else len(images))
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

    def _flush(self, pending: dict[int, dict[str, float]]) -> None:
        for step, metrics in sorted(pending.items()):
            self.sink(metrics, step)
        pending.clear()

    def _validate(self, iteration: int, bar: "_Progress") -> None:
        if self.val is None or len(self.val) == 0:
            return
        logits = predict_logits(self.model, self.val.images, self.preprocess, self.eval_batch_size)
        targets = torch.from_numpy(self.val.targets)
        acc = float((logits.argmax(1) == targets).float().mean())
        loss = float(nn.functional.cross_entropy(logits, targets))
        self.sink({"val_acc": acc, "val_loss": loss}, iteration)
        bar.note(f"iteration {iteration}: val_acc {acc:.4f} val_loss {loss:.4f}")
        if acc > self.state.best_metric:
            self.state.best_metric, self.state.best_iter = acc, iteration
            save_atomic({"model": self.model.state_dict(), "iteration": iteration, "val_acc": acc},
                        self.checkpoint_dir / BEST)

    def save_checkpoint(self) -> None:
        obj = {"format": "deepmars-checkpoint/1", "model": self.model.state_dict(),
               "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
               "rng": rng_state(), "state": self.state.to_dict(), **self.checkpoint_extra}
        if not save_atomic(obj, self.checkpoint_dir / LATEST):
            self.state.failed_checkpoints += 1

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        s = ckpt["state"]
        self.state = LoopState(int(s["iteration"]), float(s["best_metric"]), int(s["best_iter"]),
                               int(s["failed_checkpoints"]), [list(c) for c in s["corrupt"]])


@torch.inference_mode()
def predict_logits(model: nn.Module, images: np.ndarray, pre: Preprocess, batch_size: int = 100,
                   views: tuple[str, ...] = ("identity",)) -> torch.Tensor:
    """Logits for decoded uint8 images (centre crop), in batches; the model is left in eval mode.

    With test-time views (deepmars.models.tta) the result is the log of the views' mean softmax,
    which stands in for logits everywhere (temperature scaling included)."""
    model.eval()
    out = [combine_views(model(expand_views(pre.eval_batch(images[i:i + batch_size]), views)), len(views)).float()
           for i in range(0, len(images), batch_size)]
    if not out:
        return torch.empty((0, 0))
    return torch.cat(out)


class _Progress:
    """A tqdm bar on a terminal; periodic log lines (iteration, loss, img/s, ETA) otherwise."""

    def __init__(self, mode: str, start: int, total: int, log_every: int):
        use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True) if use_bar else None
        self.start_time, self.images, self.it, self.total, self.every = time.perf_counter(), 0, start, total, log_every
        self.start_it = start

    def update(self, loss: float, lr: float, n_images: int) -> None:
        self.it += 1
        self.images += n_images
        rate = self.images / max(time.perf_counter() - self.start_time, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.1f}", refresh=False)
            self.bar.update(1)
        elif self.it % self.every == 0 or self.it == self.total:
            done = self.it - self.start_it
            eta = (time.perf_counter() - self.start_time) / max(done, 1) * (self.total - self.it)
            log.info("iteration %d/%d loss %.4f lr %.2e %.1f img/s ETA %s", self.it, self.total, loss, lr,
                     rate, time.strftime("%H:%M:%S", time.gmtime(eta)))

    def note(self, text: str) -> None:
        (self.bar.write if self.bar is not None else log.info)(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
