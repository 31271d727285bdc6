"""Training throughput: the real train.py loop vs a bare model loop, side by side in one run.

    python benchmarks/train_throughput.py [--iters 40] [--threads 2] [--img-size 224]
        [--precision 32,bf16] [--device auto]

Full loop: deepmars' own training loop (Loop.run) on the real HiRISE v1 data
($DEEPMARS_DATA/hirise), EfficientNet-Lite0 (offline ImageNet weights), batch 32, decoded-image
cache, Caffe random crop + mirror, LR schedule, metric logging and progress. Model only: the same
network, batch, threads and optimizer on batches already normalised in memory (on the device).
Both are timed after a warm-up, alternately twice; the ratio is full / model-only (target >= 0.95).
With several ``--precision`` values (32, bf16, 16: autocast, as trainer.precision) each is timed
the same way and the rates are printed side by side. On a GPU each timing ends with a
synchronisation, so queued work is counted.
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
from deepmars.devices import autocast, check_precision, cuda_report, grad_scaler, resolve_device
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
    """Wraps the batch iterator: records when each batch is asked for (= previous step done; on a
    GPU after waiting for the queued work)."""

    def __init__(self, batches, device: torch.device):
        self.batches, self.stamps, self.device = batches, [], device

    def _stamp(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def __iter__(self):
        for b in self.batches:
            self._stamp()
            yield b
        self._stamp()


def full_loop(cfg, model, pre, train, iters: int, batch: int, precision: str) -> float:
    model = copy.deepcopy(model)
    device = next(model.parameters()).device
    opt = build_optimizer(cfg, model)
    loop = Loop(model=model, optimizer=opt, scheduler=build_scheduler(opt, OmegaConf.to_object(cfg.schedule), iters),
                criterion=torch.nn.CrossEntropyLoss(), preprocess=pre, augment=cfg.trainer.augment, seed=0,
                max_iters=iters, eval_every=10**9, checkpoint_every=10**9, log_every=10,
                checkpoint_dir=Path("/nonexistent"), checkpoint_extra={}, val=None, progress="log",
                sink=lambda metrics, step: None, precision=precision)
    loop.save_checkpoint = lambda: None  # the forced final checkpoint is not part of the step rate
    timed = Timed(memory_batches(train, BatchPlan(len(train), batch, 0), 0, iters), device)
    loop.run(timed)
    s = timed.stamps
    return batch * (len(s) - 1 - WARMUP) / (s[-1] - s[WARMUP])


def model_only(cfg, model, pre, train, iters: int, batch: int, precision: str) -> float:
    model = copy.deepcopy(model).train()
    device = next(model.parameters()).device
    opt = build_optimizer(cfg, model)
    crit = torch.nn.CrossEntropyLoss()
    scaler = grad_scaler(device, precision)
    x = pre.eval_batch(train.images[:batch], device)
    y = torch.from_numpy(train.targets[:batch]).to(device)
    timer = Timed(range(iters), device)
    for _ in timer:
        with autocast(device, precision):
            loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    s = timer.stamps
    return batch * (len(s) - 1 - WARMUP) / (s[-1] - s[WARMUP])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--precision", default="32", help="comma-separated: 32, bf16, 16 (timed side by side)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    args = ap.parse_args()
    if not os.environ.get("DEEPMARS_DATA"):
        sys.exit("set DEEPMARS_DATA to the folder holding hirise/ (the published HiRISE v1 data set)")
    data_root = Path(os.environ["DEEPMARS_DATA"]) / "hirise"
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device, "--device")
    precisions = [check_precision(p, device, "--precision") for p in args.precision.split(",")]
    cfg = config(args.img_size, args.batch, args.iters)
    ds = load_dataset(cfg.dataset, data_root)
    model, pre = build_model(OmegaConf.to_object(cfg.model), len(ds.class_names))
    model.to(device)
    n = args.batch * (args.iters + 1)
    train = decode_samples(make_splits(ds, cfg.split)["train"][:n], pre, 0, "decode", False)
    rates = {p: ([], []) for p in precisions}
    for _ in range(2):
        for p in precisions:
            rates[p][0].append(full_loop(cfg, model, pre, train, args.iters, args.batch, p))
            rates[p][1].append(model_only(cfg, model, pre, train, args.iters, args.batch, p))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"machine: {os.cpu_count()} CPUs, {where}; {cuda_report()}")
    print(f"EfficientNet-Lite0 at {args.img_size} px, batch {args.batch}, {args.iters} iterations "
          f"({WARMUP} warm-up) x2, channels_last")
    print(f"{'precision':>9}  {'full loop img/s':>15}  {'model only img/s':>16}  {'ratio':>5}   "
          "runs (full | model only)")
    for p, (full, bare) in rates.items():
        f, b = statistics.median(full), statistics.median(bare)
        print(f"{p:>9}  {f:15.1f}  {b:16.1f}  {f / b:5.2f}   {', '.join(f'{v:.1f}' for v in full)} | "
              f"{', '.join(f'{v:.1f}' for v in bare)}")
    if len(precisions) > 1:
        base = statistics.median(rates[precisions[0]][0])
        print("full-loop speed-up over " + precisions[0] + ": " + ", ".join(
            f"{p} {statistics.median(rates[p][0]) / base:.2f}x" for p in precisions[1:]))


if __name__ == "__main__":
    main()
