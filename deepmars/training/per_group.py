"""MSLNet-inst: one network per instrument, each image routed to its instrument's network.

The paper trained separate MSL models for Mastcam Left, Mastcam Right and MAHLI (val 83.7,
test 50.2 against MSLNet's 72.8 / 66.7). Here ``per_group`` trains one child run per value of a
file-name field on that subset, then evaluates the routed combination on the full splits, beside
an optional single model, in one report logged to the parent run.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from deepmars import tracking
from deepmars.config import validate
from deepmars.data.cache import DecodedImages
from deepmars.devices import resolve_device
from deepmars.evaluation import SplitPredictions, route_by_group, softmax, write_report
from deepmars.evaluation.apply import bundle_logits, decode_for, predictions_for
from deepmars.models.bundle import ModelBundle
from deepmars.models.loading import load_bundle
from deepmars.training.distributed import from_environment, process_group

log = logging.getLogger(__name__)


def _child_cfg(cfg: DictConfig, value: str, parent_id: str | None) -> DictConfig:
    child = copy.deepcopy(cfg)
    with open_dict(child):
        child.per_group = None
        child.dataset.where = {str(cfg.per_group.field): [value]}
        child.tracking.parent_run_id = parent_id
        child.tracking.run_name = f"{cfg.per_group.field}={value}"
        child.trainer.checkpoint_dir = str(Path(cfg.trainer.checkpoint_dir) / value)
    return child


def _routed(bundles: dict[str, ModelBundle], data: DecodedImages, field: str, batch: int) -> SplitPredictions:
    groups = np.array([str(s.meta.get(field)) for s in data.samples])
    probs = {v: softmax(bundle_logits(b, data, batch), b.temperature) for v, b in bundles.items()}
    if not len(data):
        return predictions_for(data, probs=np.zeros((0, len(next(iter(bundles.values())).class_names))))
    return predictions_for(data, probs=route_by_group(probs, groups))


def _single(bundle: ModelBundle, data: DecodedImages, batch: int) -> SplitPredictions:
    return predictions_for(data, probs=softmax(bundle_logits(bundle, data, batch), bundle.temperature))


def train_per_group(cfg: DictConfig) -> float:
    """Train one model per ``per_group.groups`` value, report the routed combination; returns its val acc.

    Under torchrun the processes share one process group for all the models: the others go on to
    the next model while process 0 evaluates the last one, and meet it at the next model's start.
    """
    cfg = validate(cfg)
    dist = from_environment()
    with process_group(dist, resolve_device(cfg.trainer.device, "trainer.device")):
        return _train_groups(cfg, dist.is_main)


def _train_groups(cfg: DictConfig, main: bool) -> float:
    from deepmars.training.run import train

    pg = cfg.per_group
    experiment_id = tracking.setup(cfg.tracking) if main else None  # process 0 alone tracks and reports
    client = MlflowClient() if experiment_id else None
    parent_id = None
    if client:
        parent_id = client.create_run(experiment_id, run_name=f"per-{pg.field} ({', '.join(pg.groups)})",
                                      tags={"deepmars.kind": "per_group"}).info.run_id
        client.log_text(parent_id, OmegaConf.to_yaml(cfg), "config.yaml")
    status = "FAILED"
    try:
        bundles = {}
        for value in pg.groups:
            child = _child_cfg(cfg, str(value), parent_id)
            train(child)
            if main:
                bundles[str(value)] = ModelBundle.load(Path(child.trainer.checkpoint_dir) / "model.pt")
        if not main:
            return float("nan")
        metrics = _combined_report(cfg, bundles, client, parent_id)
        status = "FINISHED"
        return float(metrics.get("val_acc", float("nan")))
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if client:
            client.set_terminated(parent_id, status)


def _combined_report(cfg: DictConfig, bundles: dict[str, ModelBundle], client, parent_id) -> dict:
    from deepmars.training.run import load_and_split

    _, splits = load_and_split(cfg)
    device = resolve_device(cfg.trainer.device, "trainer.device")
    for bundle in bundles.values():
        bundle.model.to(device)
    first = next(iter(bundles.values()))
    batch = int(cfg.trainer.eval_batch_size)
    field = str(cfg.per_group.field)
    data = {n: decode_for(first, splits[n], int(cfg.trainer.num_workers), f"decode {n}")
            for n in ("train", "val", "test")}
    routed = {n: _routed(bundles, d, field, batch) for n, d in data.items()}
    compare = {}
    if cfg.per_group.compare_model:
        single = load_bundle(str(cfg.per_group.compare_model),
                             cfg.tracking.uri and tracking.resolve_uri(str(cfg.tracking.uri)))
        single.model.to(device)
        # The single model sees images through its own preprocessing (its input size may differ);
        # the images already decoded are reused when it is the same.
        own = data if single.preprocess == first.preprocess else {
            n: decode_for(single, splits[n], int(cfg.trainer.num_workers), f"decode {n}") for n in data}
        compare["single model"] = {n: _single(single, d, batch) for n, d in own.items()}
    name = f"{cfg.dataset.name}-inst"
    with tempfile.TemporaryDirectory() as tmp:
        out = (Path(cfg.trainer.checkpoint_dir).parent / "evaluation_per_group" if cfg.trainer.checkpoint_dir
               else Path(tmp))
        # Each routed posterior is already calibrated by its own network's temperature.
        metrics = write_report(routed, first.class_names, out, dataset=str(cfg.dataset.name),
                               model_name=name, title=f"{name}: one model per {field}", compare=compare,
                               temperature=1.0)
        if client:
            for k, v in metrics.items():
                client.log_metric(parent_id, k, v)
            client.log_artifacts(parent_id, str(out), "evaluation")
    log.info("per-%s model: val_acc %.4f test_acc %.4f; report %s", field, metrics.get("val_acc", float("nan")),
             metrics.get("test_acc", float("nan")), out / "report.md")
    return metrics
