"""After the last iteration: best weights, evaluation report, calibrated model bundle, MLflow model.

The temperature fitted on validation logits is saved in the bundle, so a prediction's
"confidence >= 0.9" means what it says.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import mlflow
import numpy as np
import torch
from omegaconf import DictConfig

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import LabeledDataset, Sample
from deepmars.evaluation import SplitPredictions, fit_temperature, write_report
from deepmars.evaluation.apply import predictions_for
from deepmars.models.bundle import ModelBundle
from deepmars.schema import plain
from deepmars.training.checkpoint import BEST, load_checkpoint
from deepmars.training.loop import Loop, predict_logits

log = logging.getLogger(__name__)

BUNDLE_ARTIFACT = "bundle"


def split_predictions(model, data: DecodedImages, pre, batch_size: int) -> SplitPredictions:
    logits = predict_logits(model, data.images, pre, batch_size).numpy().reshape(len(data), -1)
    return predictions_for(data, logits=logits)


def load_best(loop: Loop) -> None:
    path = loop.checkpoint_dir / BEST
    if path.is_file():
        best = load_checkpoint(path)
        loop.model.load_state_dict(best["model"])
        log.info("using the best model: iteration %d, val_acc %.4f", best["iteration"], best["val_acc"])


def make_bundle(cfg: DictConfig, loop: Loop, ds: LabeledDataset, pre, temperature: float, run_id: str | None) -> ModelBundle:
    return ModelBundle(
        model=loop.model, model_cfg=plain(cfg.model), class_names=list(ds.class_names), preprocess=pre,
        temperature=temperature,
        dataset={"name": ds.name, "version": ds.version, "labels_sha256": ds.labels_sha256,
                 "class_ids": list(ds.class_ids), "metadata": ds.metadata_spec},
        model_id=f"runs:/{run_id}" if run_id else "")


def finish_run(cfg: DictConfig, session, loop: Loop, ds: LabeledDataset, splits: dict[str, list[Sample]],
               train_data, val: DecodedImages, pre, decode_split) -> float:
    load_best(loop)
    preds: dict[str, SplitPredictions] = {}
    for name in map(str, cfg.trainer.eval_splits):
        if name == "val":
            data = val
        elif name == "train" and isinstance(train_data, DecodedImages):
            data = train_data
        else:
            data = decode_split(cfg, splits[name], pre, name)
        preds[name] = split_predictions(loop.model, data, pre, int(cfg.trainer.eval_batch_size))
    vp = preds.get("val")
    temperature = fit_temperature(vp.logits, vp.targets) if vp is not None and vp.n else 1.0
    out_dir = loop.checkpoint_dir.parent / "evaluation"
    metrics = write_report(preds, ds.class_names, out_dir,
                           dataset=ds.name,
                           model_name=str(cfg.model.name), title=f"{ds.name} {ds.version}: {cfg.model.name}")
    metrics.update({"best_val_acc": loop.state.best_metric, "best_iteration": loop.state.best_iter,
                    "failed_checkpoints": loop.state.failed_checkpoints,
                    "unreadable_images_in_training": len({path for path, _ in loop.state.corrupt})})
    session.log_metrics(metrics, step=loop.state.iteration)
    session.log_artifacts(out_dir, "evaluation")
    bundle = make_bundle(cfg, loop, ds, pre, temperature, session.run_id)
    path = bundle.save(loop.checkpoint_dir / "model.pt")
    if session.active:
        mlflow.log_artifact(str(path), BUNDLE_ARTIFACT)
        if cfg.tracking.log_model:
            log_mlflow_model(loop.model, pre)
    log.info("results: %s", _summary(metrics))
    log.info("report: %s; model bundle: %s", out_dir / "report.md", path)
    best = loop.state.best_metric
    session.final_metric = best if math.isfinite(best) else metrics.get("val_acc")
    return float(session.final_metric if session.final_metric is not None else math.nan)


def log_mlflow_model(model: torch.nn.Module, pre) -> None:
    """``runs:/<id>/model`` loads the network back with ``mlflow.pytorch.load_model``.

    Pickle format: MLflow 3's default (torch.export) needs a traced example and fails on some
    timm graphs, while the pickled module reloads anywhere deepmars (and timm) is installed.
    """
    example = np.zeros((1, pre.channels, pre.img_size, pre.img_size), dtype=np.float32)
    mlflow_log = logging.getLogger("mlflow.pytorch")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.ERROR)  # its pickle warning is the choice documented above
    try:
        mlflow.pytorch.log_model(model, name="model", serialization_format="pickle", input_example=example)
    finally:
        mlflow_log.setLevel(level)


def _summary(m: dict[str, float]) -> str:
    keys = [k for k in ("train_acc", "val_acc", "test_acc", "test_acc_at_0.9_calibrated",
                        "test_abstain_at_0.9_calibrated", "test_ece", "test_ece_calibrated", "temperature") if k in m]
    return ", ".join(f"{k} {m[k]:.4f}" for k in keys)
