"""``train(cfg)``: data set -> split -> model -> optimisation -> evaluation -> MLflow run.

This is what ``python train.py`` calls. It returns the best validation accuracy, so Hydra's
Optuna sweeper can optimise it.
"""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from deepmars import tracking
from deepmars.config import config_hash, training_identity, validate
from deepmars.data.cache import DecodedImages, decode_samples
from deepmars.data.dataset import LabeledDataset, Sample, load_dataset
from deepmars.data.root import resolve_root
from deepmars.data.transforms import Preprocess
from deepmars.models.factory import build_model, head_prefix
from deepmars.splits import check_splits, make_splits, split_table
from deepmars.training.batches import BatchPlan, class_balance_weights, memory_batches, streaming_batches
from deepmars.training.checkpoint import save_atomic
from deepmars.training.finish import finish_run
from deepmars.training.frozen import train_frozen
from deepmars.training.head_init import init_head_by_probe
from deepmars.training.loop import Loop
from deepmars.training.param_groups import build_param_groups, describe_param_groups
from deepmars.training.resume import Resume, find_resume
from deepmars.training.schedules import build_scheduler
from deepmars.training.session import RunSession
from deepmars.training.wise_ft import START, check_alphas

log = logging.getLogger(__name__)


def set_determinism(cfg: DictConfig) -> None:
    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_and_split(cfg: DictConfig) -> tuple[LabeledDataset, dict[str, list[Sample]]]:
    root = resolve_root(cfg.dataset)
    ds = load_dataset(cfg.dataset, root)
    if ds.dropped_classes:
        log.info("classes with no labeled image, left out of the model: %s", ds.dropped_classes)
    splits = make_splits(ds, cfg.split)
    log.info("data set %s %s at %s, split %s:\n%s", ds.name, ds.version, root, cfg.split.name,
             split_table(ds, splits))
    check_splits(splits)
    return ds, splits


def decode_split(cfg: DictConfig, samples: list[Sample], pre: Preprocess, name: str) -> DecodedImages:
    progress = cfg.trainer.progress != "log"
    return decode_samples(samples, pre, int(cfg.trainer.num_workers), f"decode {name}", progress)


def total_iters(cfg: DictConfig, n_train: int) -> int:
    if cfg.trainer.max_iters:
        return int(cfg.trainer.max_iters)
    per_epoch = max(1, n_train // min(int(cfg.trainer.batch_size), n_train))
    return int(cfg.trainer.epochs) * per_epoch


def build_optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    groups = build_param_groups(model, o.lr, o.weight_decay, dict(o.lr_mult), bias_lr_mult=o.bias_lr_mult,
                                bias_decay=o.bias_decay, head_prefix=head_prefix(model, cfg.model.head))
    log.info("parameter groups:\n%s", describe_param_groups(groups))
    for g in groups:
        g.pop("param_names", None)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)


def build_criterion(cfg: DictConfig, targets: np.ndarray, num_classes: int) -> torch.nn.Module:
    weight = None
    if cfg.trainer.class_balance == "loss":
        counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / num_classes, 0.0)
        weight = torch.tensor(w, dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=float(cfg.trainer.label_smoothing))


def train_batches(cfg: DictConfig, train: DecodedImages | list[Sample], pre: Preprocess, seed: int,
                  start: int, stop: int):
    targets = train.targets if isinstance(train, DecodedImages) else np.array([s.target for s in train])
    weights = class_balance_weights(targets) if cfg.trainer.class_balance == "sampler" else None
    plan = BatchPlan(len(targets), int(cfg.trainer.batch_size), seed, weights)
    if isinstance(train, DecodedImages):
        return memory_batches(train, plan, start, stop)
    return streaming_batches(train, pre, plan, start, stop, int(cfg.trainer.num_workers))


def probe_head(cfg: DictConfig, model: torch.nn.Module, train_data, train_samples: list[Sample], pre: Preprocess) -> dict:
    """LP-FT's first stage, on the decoded training images (decoded here if not cached)."""
    data = train_data if isinstance(train_data, DecodedImages) else decode_split(cfg, train_samples, pre, "train")
    head = model.get_submodule(head_prefix(model, cfg.model.head))
    return init_head_by_probe(model, head, data, pre, float(cfg.trainer.probe_c), int(cfg.trainer.eval_batch_size))


@contextmanager
def sigterm_as_interrupt():
    """A scheduler's SIGTERM ends the run as KILLED, like Ctrl-C, after the last checkpoint."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(cfg: DictConfig) -> float:
    """Train as configured; returns the best validation accuracy.

    What checks the user's inputs runs before the MLflow run is created (the config, the data set
    and its split, the model and its weights), so a command that never started training leaves
    no run behind. A failure after that (training, evaluation, an interrupt) is recorded in the
    run as FAILED or KILLED with the error.
    """
    cfg = validate(cfg)
    set_determinism(cfg)
    ds, splits = load_and_split(cfg)
    experiment_id = tracking.setup(cfg.tracking)
    resume = find_resume(cfg, experiment_id)
    model, pre = build_model(OmegaConf.to_object(cfg.model), len(ds.class_names), load_pretrained=resume is None)
    checkpoint_dir = resume.checkpoint_dir if resume else Path(cfg.trainer.checkpoint_dir)
    with RunSession(cfg, experiment_id, resume, checkpoint_dir) as session:
        train_data = decode_split(cfg, splits["train"], pre, "train") if cfg.trainer.cache == "memory" else splits["train"]
        val = decode_split(cfg, splits["val"], pre, "val")
        if not cfg.trainer.fine_tune:
            session.log_start(ds, splits, train_data, val)
            return train_frozen(cfg, session, model, pre, ds, splits, train_data, val, decode_split, checkpoint_dir)
        max_iters = total_iters(cfg, len(train_data))
        if resume is None and cfg.trainer.head_init == "linear_probe":
            session.log_metrics(probe_head(cfg, model, train_data, splits["train"], pre), step=0)
        if resume is None and cfg.trainer.wise_ft:
            check_alphas(cfg.trainer.wise_ft_alphas)
            save_atomic({"model": model.state_dict()}, checkpoint_dir / START)
        optimizer = build_optimizer(cfg, model)
        targets = train_data.targets if isinstance(train_data, DecodedImages) else np.array([s.target for s in train_data])
        schedule = build_scheduler(optimizer, OmegaConf.to_object(cfg.schedule), max_iters)
        loop = Loop(model=model, optimizer=optimizer, scheduler=schedule,
                    criterion=build_criterion(cfg, targets, len(ds.class_names)), preprocess=pre,
                    augment=cfg.trainer.augment, seed=int(cfg.seed), max_iters=max_iters,
                    eval_every=int(cfg.trainer.eval_every), checkpoint_every=int(cfg.trainer.checkpoint_every),
                    log_every=int(cfg.trainer.log_every), checkpoint_dir=checkpoint_dir,
                    checkpoint_extra={"config": training_identity(cfg), "config_hash": config_hash(cfg),
                                      "run_id": session.run_id or ""},
                    val=val, eval_batch_size=int(cfg.trainer.eval_batch_size), sink=session.log_metrics,
                    progress=cfg.trainer.progress)
        if resume:
            resume.restore(loop)
        else:
            session.log_start(ds, splits, train_data, val)
        with sigterm_as_interrupt():
            loop.run(train_batches(cfg, train_data, pre, int(cfg.seed), loop.state.iteration, max_iters))
        return finish_run(cfg, session, loop, ds, splits, train_data, val, pre, decode_split)
