"""``train(cfg)``: data set -> split -> model -> optimisation -> evaluation -> MLflow run.

This is what ``python train.py`` calls. It returns the best validation accuracy, so Hydra's
Optuna sweeper can optimise it.
"""

from __future__ import annotations

import logging
import math
import os
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
from deepmars.devices import check_precision, resolve_device, to_cpu
from deepmars.errors import ConfigError
from deepmars.evaluation.sources import sources_of
from deepmars.models.factory import build_model, head_prefix
from deepmars.splits import check_splits, make_splits, split_table
from deepmars.training.batches import BatchPlan, class_balance_weights, memory_batches, streaming_batches
from deepmars.training.checkpoint import save_atomic
from deepmars.training.distributed import Distributed, from_environment, process_group, wrap_model
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


def set_determinism(cfg: DictConfig, device: torch.device | None = None) -> None:
    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))
    if device is not None and device.type == "cuda":
        # cuBLAS is deterministic only with a fixed workspace (set before its first call).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
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
    if cfg.model.get("source_prior_strength") is not None:
        sources_of(ds.samples)  # before any training: every image must name its source image
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
                  start: int, stop: int, dist: Distributed):
    targets = train.targets if isinstance(train, DecodedImages) else np.array([s.target for s in train])
    weights = class_balance_weights(targets) if cfg.trainer.class_balance == "sampler" else None
    plan = BatchPlan(len(targets), int(cfg.trainer.batch_size), seed, weights)
    if plan.batch_size < dist.world_size:
        raise ConfigError(f"trainer.batch_size: {plan.batch_size} images per batch cannot be shared by "
                          f"{dist.world_size} processes; use at least one image per process")
    if isinstance(train, DecodedImages):
        return memory_batches(train, plan, start, stop, dist)
    return streaming_batches(train, pre, plan, start, stop, int(cfg.trainer.num_workers), dist)


def probe_head(cfg: DictConfig, model: torch.nn.Module, train_data, train_samples: list[Sample],
               pre: Preprocess) -> dict:
    """LP-FT's first stage, on the decoded training images (decoded here if not cached)."""
    data = train_data if isinstance(train_data, DecodedImages) else decode_split(cfg, train_samples, pre, "train")
    head = model.get_submodule(head_prefix(model, cfg.model.head))
    # fine-tuning that weighs the classes equally starts from a head fitted to the same objective
    return init_head_by_probe(model, head, data, pre, float(cfg.trainer.probe_c), int(cfg.trainer.eval_batch_size),
                              class_balanced=cfg.trainer.class_balance != "none")


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


def shared_resume(cfg: DictConfig, experiment_id: str | None, dist: Distributed) -> Resume | None:
    """Process 0 finds the checkpoint (MLflow, files) and hands it to the others, which may run on
    machines that cannot read its disk."""
    resume = find_resume(cfg, experiment_id) if dist.is_main else None
    if not dist.active:
        return resume
    payload = dist.broadcast(None if resume is None else (resume.checkpoint, str(resume.path)))
    return None if payload is None else Resume(payload[0], Path(payload[1]))


def training_net(cfg: DictConfig, model: torch.nn.Module, dist: Distributed, device: torch.device) -> torch.nn.Module:
    """What each step calls: the model, inside DDP when distributed, compiled when asked."""
    net = wrap_model(model, dist, device)
    return torch.compile(net) if cfg.trainer.compile else net


def _check_not_a_sweep(dist: Distributed) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if dist.active and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError("a sweep (-m) cannot run inside torchrun: start one torchrun per job, or "
                          "use a cluster launcher (hydra/launcher=slurm) with one process per job")


def train(cfg: DictConfig) -> float:
    """Train as configured; returns the best validation accuracy (NaN in processes other than 0).

    What checks the user's inputs runs before the MLflow run is created (the config, the data set
    and its split, the model and its weights), so a command that never started training leaves
    no run behind. A failure after that (training, evaluation, an interrupt) is recorded in the
    run as FAILED or KILLED with the error. Under torchrun every process runs this; process 0
    alone tracks, checkpoints and evaluates.
    """
    cfg = validate(cfg)
    dist = from_environment()
    device = resolve_device(cfg.trainer.device, "trainer.device")
    precision = check_precision(cfg.trainer.precision, device)
    _check_not_a_sweep(dist)
    if not cfg.trainer.fine_tune and not dist.is_main:
        return math.nan  # the frozen recipe is one logistic-regression fit: process 0 does it alone
    with process_group(dist, device):
        return _train(cfg, dist, device, precision)


def _train(cfg: DictConfig, dist: Distributed, device: torch.device, precision: str) -> float:
    set_determinism(cfg, device)
    ds, splits = load_and_split(cfg)
    experiment_id = tracking.setup(cfg.tracking) if dist.is_main else None
    resume = shared_resume(cfg, experiment_id, dist)
    model, pre = build_model(OmegaConf.to_object(cfg.model), len(ds.class_names), load_pretrained=resume is None)
    model.to(device)
    checkpoint_dir = resume.checkpoint_dir if resume else Path(cfg.trainer.checkpoint_dir)
    with RunSession(cfg, experiment_id, resume, checkpoint_dir) as session:
        train_data = (decode_split(cfg, splits["train"], pre, "train") if cfg.trainer.cache == "memory"
                      else splits["train"])
        val = decode_split(cfg, splits["val"], pre, "val") if dist.is_main else None
        if not cfg.trainer.fine_tune:
            session.log_start(ds, splits, train_data, val)
            return train_frozen(cfg, session, model, pre, ds, splits, train_data, val, decode_split, checkpoint_dir)
        max_iters = total_iters(cfg, len(train_data))
        if resume is None and cfg.trainer.head_init == "linear_probe":
            # Every process fits the same probe (deterministic), so none waits for process 0's.
            session.log_metrics(probe_head(cfg, model, train_data, splits["train"], pre), step=0)
        if resume is None and cfg.trainer.wise_ft and dist.is_main:
            check_alphas(cfg.trainer.wise_ft_alphas)
            save_atomic({"model": to_cpu(model.state_dict())}, checkpoint_dir / START)
        optimizer = build_optimizer(cfg, model)
        targets = (train_data.targets if isinstance(train_data, DecodedImages)
                   else np.array([s.target for s in train_data]))
        schedule = build_scheduler(optimizer, OmegaConf.to_object(cfg.schedule), max_iters)
        loop = Loop(model=model, optimizer=optimizer, scheduler=schedule,
                    criterion=build_criterion(cfg, targets, len(ds.class_names)), preprocess=pre,
                    augment=cfg.trainer.augment, seed=int(cfg.seed), max_iters=max_iters,
                    eval_every=int(cfg.trainer.eval_every), checkpoint_every=int(cfg.trainer.checkpoint_every),
                    log_every=int(cfg.trainer.log_every), checkpoint_dir=checkpoint_dir,
                    checkpoint_extra={"config": training_identity(cfg), "config_hash": config_hash(cfg),
                                      "run_id": session.run_id or ""},
                    val=val, eval_batch_size=int(cfg.trainer.eval_batch_size), sink=session.log_metrics,
                    progress=cfg.trainer.progress, precision=precision,
                    net=training_net(cfg, model, dist, device), dist=dist)
        if resume:
            resume.restore(loop)
        else:
            session.log_start(ds, splits, train_data, val)
        with sigterm_as_interrupt():
            loop.run(train_batches(cfg, train_data, pre, int(cfg.seed), loop.state.iteration, max_iters, dist))
        if not dist.is_main:
            return math.nan
        if dist.active:
            loop.model = plain_copy(cfg, loop.model, len(ds.class_names), device)
        return finish_run(cfg, session, loop, ds, splits, train_data, val, pre, decode_split)


def plain_copy(cfg: DictConfig, model: torch.nn.Module, num_classes: int, device: torch.device) -> torch.nn.Module:
    """The trained weights in a freshly built network with ordinary BatchNorm, for the evaluation
    and the logged model (which must load in one process, without a process group)."""
    plain, _ = build_model(OmegaConf.to_object(cfg.model), num_classes, load_pretrained=False)
    plain.load_state_dict(model.state_dict())
    return plain.to(device)
