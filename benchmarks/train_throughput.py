"""Training throughput: the real train.py loop vs a bare model loop, side by side in one run.

    python benchmarks/train_throughput.py [--iters 40] [--threads 2] [--img-size 224]

Full loop: deepmars' own training loop (Loop.run) on the real HiRISE v1 data
($DEEPMARS_DATA/hirise), EfficientNet-Lite0 (offline ImageNet weights), batch 32, decoded-image
cache, Caffe random crop + mirror, LR schedule, metric logging and progress. Model only: the same
network, batch, threads and optimizer on batches already normalised in memory. Both are timed
after a warm-up, alternately twice; the ratio is full / model-only (target >= 0.95).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from deepmars.config import validate
from deepmars.data.cache import decode_samples
from deepmars.data.dataset import load_dataset
from deepmars.models.factory import build_model
from deepmars.splits import make_splits
from deepmars.training.batches import BatchPlan, memory_batches
from deepmars.training.loop import Loop
from deepmars.training.run import build_optimizer
from deepmars.training.schedules import build_scheduler

CONF = Path(__file__).resolve().parents[1] / "conf"
WARMUP = 5


def config(img_size: int, batch: int, iters: int):
    cfg = OmegaConf.create({
        "seed": 0, "dataset": OmegaConf.load(CONF / "dataset/hirise.yaml"),
        "split": OmegaConf.load(CONF / "split/source_image.yaml"),
        "model": OmegaConf.load(CONF / "model/efficientnet_lite0.yaml"),
        "optim": OmegaConf.load(CONF / "optim/sgd.yaml"), "schedule": OmegaConf.load(CONF / "schedule/cosine.yaml"),
        "trainer": OmegaConf.load(CONF / "trainer/default.yaml")})
    cfg.split.seed = 0
    cfg.model.img_size = img_size
    cfg.trainer.batch_size = batch
    cfg.trainer.max_iters = iters
    cfg.trainer.checkpoint_dir = "unused"  # the loop below never writes one
    return validate(cfg)


class Timed:
    """Wraps the batch iterator: records when each batch is asked for (= previous step done)."""

    def __init__(self, batches):
        self.batches, self.stamps = batches, []

    def __iter__(self):
        for b in self.batches:
            self.stamps.append(time.perf_counter())
            yield b
        self.stamps.append(time.perf_counter())


def full_loop(cfg, model, pre, train, iters: int, batch: int) -> float:
    model = copy.deepcopy(model)
    opt = build_optimizer(cfg, model)
    loop = Loop(model=model, optimizer=opt, scheduler=build_scheduler(opt, OmegaConf.to_object(cfg.schedule), iters),
                criterion=torch.nn.CrossEntropyLoss(), preprocess=pre, augment=cfg.trainer.augment, seed=0,
                max_iters=iters, eval_every=10**9, checkpoint_every=10**9, log_every=10,
                checkpoint_dir=Path("/nonexistent"), checkpoint_extra={}, val=None, progress="log",
                sink=lambda metrics, step: None)
    loop.save_checkpoint = lambda: None  # the forced final checkpoint is not part of the step rate
    timed = Timed(memory_batches(train, BatchPlan(len(train), batch, 0), 0, iters))
    loop.run(timed)
    s = timed.stamps
    return batch * (len(s) - 1 - WARMUP) / (s[-1] - s[WARMUP])


def model_only(cfg, model, pre, train, iters: int, batch: int) -> float:
    model = copy.deepcopy(model).train()
    opt = build_optimizer(cfg, model)
    crit = torch.nn.CrossEntropyLoss()
    x = pre.eval_batch(train.images[:batch])
    y = torch.from_numpy(train.targets[:batch])
    stamps = []
    for _ in range(iters):
        stamps.append(time.perf_counter())
        loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    stamps.append(time.perf_counter())
    return batch * (len(stamps) - 1 - WARMUP) / (stamps[-1] - stamps[WARMUP])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if not os.environ.get("DEEPMARS_DATA"):
        sys.exit("set DEEPMARS_DATA to the folder holding hirise/ (the published HiRISE v1 data set)")
    data_root = Path(os.environ["DEEPMARS_DATA"]) / "hirise"
    torch.set_num_threads(args.threads)
    cfg = config(args.img_size, args.batch, args.iters)
    ds = load_dataset(cfg.dataset, data_root)
    model, pre = build_model(OmegaConf.to_object(cfg.model), len(ds.class_names))
    n = args.batch * (args.iters + 1)
    train = decode_samples(make_splits(ds, cfg.split)["train"][:n], pre, 0, "decode", False)
    full, bare = [], []
    for _ in range(2):
        full.append(full_loop(cfg, model, pre, train, args.iters, args.batch))
        bare.append(model_only(cfg, model, pre, train, args.iters, args.batch))
    f, b = statistics.median(full), statistics.median(bare)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads, "
          f"EfficientNet-Lite0 at {args.img_size} px, batch {args.batch}, {args.iters} iterations "
          f"({WARMUP} warm-up) x2, channels_last")
    print(f"full train.py loop: {f:7.1f} img/s   (runs: {', '.join(f'{v:.1f}' for v in full)})")
    print(f"model only:         {b:7.1f} img/s   (runs: {', '.join(f'{v:.1f}' for v in bare)})")
    print(f"ratio full / model-only: {f / b:.3f}   (target >= 0.95)")


if __name__ == "__main__":
    main()
