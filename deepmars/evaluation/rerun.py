"""Re-evaluating any trained model on any labeled data (e.g. a new batch), as a new MLflow run.

The model's class names must be the data set's (a mismatch is an error that lists it), its
preprocessing and calibration temperature come with it, and the new run is linked to the run
that trained the model. ``runtime`` and ``precision`` pick what runs it, as in predict.py: the
report of a reduced precision is that precision's accuracy, and the run is tagged with both.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from deepmars import tracking
from deepmars.config import EvaluateConfig
from deepmars.data.dataset import load_dataset
from deepmars.data.root import resolve_root
from deepmars.devices import resolve_device
from deepmars.evaluation.apply import classifier_logits, decode_for, predictions_for
from deepmars.evaluation.inputs import check_class_names
from deepmars.evaluation.metrics import majority_class
from deepmars.evaluation.report import write_report
from deepmars.evaluation.sources import sources_of
from deepmars.inference.opening import open_classifier
from deepmars.inference.runtimes import check_device
from deepmars.models.loading import load_bundle
from deepmars.schema import validate
from deepmars.splits import make_splits

log = logging.getLogger(__name__)


_warned_model_uri = False


def _checked(cfg: DictConfig) -> DictConfig:
    """``cfg`` validated against :class:`EvaluateConfig`; ``model_uri=`` (the old name) still works."""
    global _warned_model_uri
    checked = validate(EvaluateConfig, cfg)
    if checked.model_uri and not _warned_model_uri:
        _warned_model_uri = True
        print("evaluate.py: model_uri= is deprecated and will be removed; use model= "
              f"(python evaluate.py model={checked.model_uri} ...)", file=sys.stderr)
    return checked


def evaluate_model(cfg: DictConfig) -> dict[str, float]:
    cfg = _checked(cfg)
    device = resolve_device(cfg.get("device", "auto"), "device")
    check_device(cfg.runtime.value, str(device))
    experiment_id = tracking.setup(cfg.tracking)
    tracking_uri = mlflow.get_tracking_uri() if experiment_id else None
    bundle = load_bundle(str(cfg.model), tracking_uri)
    ds = load_dataset(cfg.dataset, resolve_root(cfg.dataset))
    check_class_names(bundle.class_names, ds.class_names)
    splits = make_splits(ds, cfg.split)
    preds = {}
    with open_classifier(bundle, cfg.runtime.value, cfg.precision.value, cfg.threads, tracking_uri, log.info,
                         device=device) as model:
        for name in map(str, cfg.splits):
            data = decode_for(bundle, splits[name], int(cfg.num_workers), f"decode {name}")
            logits = classifier_logits(model, data, int(cfg.batch_size))
            if bundle.adapts_to_sources:  # as landmarks.py classifies: each source image's crops together
                logits = bundle.source_logits(logits, sources_of(data.samples))
            preds[name] = predictions_for(data, logits=logits)
        model_id, inference = model.model_id, model.record()
    train_targets = [s.target for s in splits["train"]]
    majority = majority_class(np.array(train_targets), len(ds.class_names)) if train_targets else None
    out = Path(cfg.output_dir)
    metrics = write_report(preds, bundle.class_names, out, dataset=ds.name,
                           model_name=model_id, title=f"{model_id} on {ds.name} {ds.version} "
                           f"({inference['runtime']} {inference['precision']})",
                           temperature=bundle.temperature, majority=majority)
    if experiment_id:
        _log_run(cfg, experiment_id, bundle.model_id, metrics, out, inference)
    log.info("evaluation of %s: %s; report %s", model_id,
             ", ".join(f"{n}_acc {metrics[f'{n}_acc']:.4f}" for n in cfg.splits if f"{n}_acc" in metrics),
             out / "report.md")
    return metrics


def _log_run(cfg: DictConfig, experiment_id: str, model_id: str, metrics: dict, out: Path, inference: dict) -> None:
    parent = model_id[len("runs:/"):].split("/")[0] if model_id.startswith("runs:/") else None
    tags = {"deepmars.kind": "evaluation", "deepmars.evaluated_model": model_id,
            "deepmars.runtime": inference["runtime"], "deepmars.precision": inference["precision"]}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {inference['model_id']}",
                          parent_run_id=parent, tags=tags) as run:
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out), "evaluation")
        log.info("evaluation run %s; open the UI with: %s", run.info.run_id,
                 tracking.ui_command(mlflow.get_tracking_uri()))
