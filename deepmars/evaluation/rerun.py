"""Re-evaluating any trained model on any labeled data (e.g. a new batch), as a new MLflow run.

The model's class names must be the data set's (a mismatch is an error that lists it), its
preprocessing and calibration temperature come with it, and the new run is linked to the run
that trained the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from deepmars import tracking
from deepmars.config import DatasetConfig, SplitConfig, TrackingConfig
from deepmars.data.dataset import load_dataset
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError
from deepmars.evaluation.apply import bundle_logits, decode_for, predictions_for
from deepmars.evaluation.inputs import check_class_names
from deepmars.evaluation.metrics import majority_class
from deepmars.evaluation.report import write_report
from deepmars.models.loading import load_bundle
from deepmars.splits import SPLITS, make_splits

log = logging.getLogger(__name__)


def _checked(cfg: DictConfig) -> DictConfig:
    if OmegaConf.is_missing(cfg, "model_uri"):
        raise ConfigError("model_uri is required: a run id, runs:/<id>, models:/<name>@<alias> or a model.pt file")
    for key, schema in (("dataset", DatasetConfig), ("split", SplitConfig), ("tracking", TrackingConfig)):
        try:
            cfg[key] = OmegaConf.merge(OmegaConf.structured(schema), cfg[key])
        except Exception as exc:  # noqa: BLE001 - reported as the config error it is
            raise ConfigError(f"{key}: {exc}".splitlines()[0]) from None
    bad = [s for s in cfg.splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"splits: {bad} not in {list(SPLITS)}")
    return cfg


def evaluate_model(cfg: DictConfig) -> dict[str, float]:
    cfg = _checked(cfg)
    experiment_id = tracking.setup(cfg.tracking)
    bundle = load_bundle(str(cfg.model_uri), mlflow.get_tracking_uri() if experiment_id else None)
    ds = load_dataset(cfg.dataset, resolve_root(cfg.dataset))
    check_class_names(bundle.class_names, ds.class_names)
    splits = make_splits(ds, cfg.split)
    preds = {}
    for name in cfg.splits:
        data = decode_for(bundle, splits[name], int(cfg.num_workers), f"decode {name}")
        preds[name] = predictions_for(data, logits=bundle_logits(bundle, data, int(cfg.batch_size)))
    train_targets = [s.target for s in splits["train"]]
    majority = majority_class(np.array(train_targets), len(ds.class_names)) if train_targets else None
    out = Path(cfg.output_dir)
    metrics = write_report(preds, bundle.class_names, out, dataset=ds.name if ds.name in ("msl", "hirise") else None,
                           model_name=bundle.model_id, title=f"{bundle.model_id} on {ds.name} {ds.version}",
                           temperature=bundle.temperature, majority=majority)
    if experiment_id:
        _log_run(cfg, experiment_id, bundle.model_id, metrics, out)
    log.info("evaluation of %s: %s; report %s", bundle.model_id,
             ", ".join(f"{n}_acc {metrics[f'{n}_acc']:.4f}" for n in cfg.splits if f"{n}_acc" in metrics),
             out / "report.md")
    return metrics


def _log_run(cfg: DictConfig, experiment_id: str, model_id: str, metrics: dict, out: Path) -> None:
    parent = model_id[len("runs:/"):].split("/")[0] if model_id.startswith("runs:/") else None
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {model_id}", parent_run_id=parent,
                          tags={"deepmars.kind": "evaluation", "deepmars.evaluated_model": model_id}) as run:
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out), "evaluation")
        log.info("evaluation run %s; open the UI with: %s", run.info.run_id, tracking.ui_command(mlflow.get_tracking_uri()))
