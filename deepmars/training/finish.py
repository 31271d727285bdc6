"""After the last iteration: best weights, evaluation report, calibrated model bundle, MLflow model.

The temperature fitted on validation logits is saved in the bundle, so a prediction's
"confidence >= 0.9" means what it says.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
import torch
from omegaconf import DictConfig

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import LabeledDataset, Sample
from deepmars.evaluation import SplitPredictions, write_report
from deepmars.evaluation.apply import predictions_for
from deepmars.evaluation.sources import adapt_splits
from deepmars.evaluation.temperature_choice import choose_temperature
from deepmars.inference.logits import predict_logits
from deepmars.models import source_prior
from deepmars.models.bundle import ModelBundle
from deepmars.models.tta import views_for
from deepmars.schema import plain
from deepmars.training.checkpoint import BEST, load_checkpoint
from deepmars.training.loop import Loop
from deepmars.training.wise_ft import choose_alpha, load_start

log = logging.getLogger(__name__)

BUNDLE_ARTIFACT = "bundle"


def split_predictions(model, data: DecodedImages, pre, batch_size: int,
                      views: tuple[str, ...] = ("identity",), precision: str = "32") -> SplitPredictions:
    logits = predict_logits(model, data.images, pre, batch_size, views, precision).numpy().reshape(len(data), -1)
    return predictions_for(data, logits=logits)


def load_best(loop: Loop) -> None:
    path = loop.checkpoint_dir / BEST
    if path.is_file():
        best = load_checkpoint(path)
        loop.model.load_state_dict(best["model"])
        log.info("using the best model: iteration %d, val_acc %.4f", best["iteration"], best["val_acc"])


def make_bundle(cfg: DictConfig, model: torch.nn.Module, ds: LabeledDataset, pre, temperature: float,
                run_id: str | None, class_prior: np.ndarray | None = None) -> ModelBundle:
    strength = cfg.model.get("source_prior_strength")
    return ModelBundle(
        class_prior=None if class_prior is None else tuple(float(p) for p in class_prior),
        source_prior_strength=None if class_prior is None or strength is None else float(strength),
        model=model, model_cfg=plain(cfg.model), class_names=list(ds.class_names), preprocess=pre,
        temperature=temperature, tta=views_for(cfg.model.tta),
        dataset={"name": ds.name, "version": ds.version, "labels_sha256": ds.labels_sha256,
                 "class_ids": list(ds.class_ids), "metadata": ds.metadata_spec},
        model_id=f"runs:/{run_id}" if run_id else "")


def with_source_prior(cfg: DictConfig, preds: dict[str, SplitPredictions], samples: dict[str, Sequence[Sample]],
                      train_targets: np.ndarray, num_classes: int, extra: dict[str, float]
                      ) -> tuple[dict[str, SplitPredictions], np.ndarray | None]:
    """Every split adapted per source image when the model config asks (its prior: the class mix the
    head was fitted on); each split's accuracy with every image alone goes into ``extra``."""
    strength = cfg.model.get("source_prior_strength")
    if strength is None:
        return preds, None
    balanced = str(cfg.trainer.get("class_balance", "none")) != "none"  # a balanced fit learned equal shares
    prior = source_prior.class_prior(train_targets, num_classes, balanced)
    preds, alone = adapt_splits(preds, samples, prior, float(strength))
    extra.update(alone)
    return preds, prior


def finish_run(cfg: DictConfig, session, loop: Loop, ds: LabeledDataset, splits: dict[str, list[Sample]],
               train_data, val: DecodedImages, pre, decode_split) -> float:
    load_best(loop)
    if cfg.trainer.wise_ft:
        _, wise = choose_alpha(loop.model, load_start(loop.checkpoint_dir), val, pre,
                               cfg.trainer.wise_ft_alphas, int(cfg.trainer.eval_batch_size))
        session.log_metrics(wise, step=loop.state.iteration)
    views = views_for(cfg.model.tta)
    preds: dict[str, SplitPredictions] = {}
    samples: dict[str, list[Sample]] = {}
    for name in map(str, cfg.trainer.eval_splits):
        if name == "val":
            data = val
        elif name == "train" and isinstance(train_data, DecodedImages):
            data = train_data
        else:
            data = decode_split(cfg, splits[name], pre, name)
        preds[name] = split_predictions(loop.model, data, pre, int(cfg.trainer.eval_batch_size), views,
                                        loop.precision)
        samples[name] = data.samples
    extra = {"best_val_acc": loop.state.best_metric, "best_iteration": loop.state.best_iter,
             "failed_checkpoints": loop.state.failed_checkpoints,
             "unreadable_images_in_training": len({path for path, _ in loop.state.corrupt})}
    preds, prior = with_source_prior(cfg, preds, samples, np.array([s.target for s in splits["train"]]),
                                     len(ds.class_names), extra)
    return report_and_save(cfg, session, loop.model, ds, pre, preds, loop.checkpoint_dir, extra,
                           step=loop.state.iteration, class_prior=prior)


def report_and_save(cfg: DictConfig, session, model: torch.nn.Module, ds: LabeledDataset, pre,
                    preds: dict[str, SplitPredictions], checkpoint_dir: Path, extra: dict[str, float],
                    step: int = 0, class_prior: np.ndarray | None = None) -> float:
    """Temperature on val, the evaluation report, the calibrated bundle and the MLflow model.

    Returns the best validation accuracy (``extra['best_val_acc']`` when finite, else val_acc).
    """
    vp = preds.get("val")
    temperature, chosen = 1.0, {}
    if vp is not None and vp.n:
        temperature, chosen = choose_temperature(str(cfg.trainer.calibration), vp.logits, vp.targets)
    out_dir = checkpoint_dir.parent / "evaluation"
    metrics = write_report(preds, ds.class_names, out_dir,
                           dataset=ds.name,
                           model_name=str(cfg.model.name), title=f"{ds.name} {ds.version}: {cfg.model.name}",
                           temperature=temperature if vp is not None and vp.n else None)
    metrics.update(extra)
    metrics.update(chosen)
    session.log_metrics(metrics, step=step)
    session.log_artifacts(out_dir, "evaluation")
    bundle = make_bundle(cfg, model, ds, pre, temperature, session.run_id, class_prior)
    path = bundle.save(checkpoint_dir / "model.pt")
    if session.active:
        mlflow.log_artifact(str(path), BUNDLE_ARTIFACT)
        if cfg.tracking.log_model:
            log_mlflow_model(model, pre)
    log.info("results: %s", _summary(metrics))
    log.info("report: %s; model bundle: %s", out_dir / "report.md", path)
    best = float(extra.get("best_val_acc", math.nan))
    session.final_metric = best if math.isfinite(best) else metrics.get("val_acc")
    return float(session.final_metric if session.final_metric is not None else math.nan)


def log_mlflow_model(model: torch.nn.Module, pre) -> None:
    """``runs:/<id>/model`` loads the network back with ``mlflow.pytorch.load_model``.

    The pickled copy lives on the CPU, so it loads on a machine without the training run's GPU.
    Pickle format: MLflow 3's default (torch.export) needs a traced example and fails on some
    timm graphs, while the pickled module reloads anywhere deepmars (and timm) is installed.
    """
    example = np.zeros((1, pre.channels, pre.img_size, pre.img_size), dtype=np.float32)
    mlflow_log = logging.getLogger("mlflow.pytorch")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.ERROR)  # its pickle warning is the choice documented above
    try:
        mlflow.pytorch.log_model(copy.deepcopy(model).cpu(), name="model", serialization_format="pickle",
                                 input_example=example)
    finally:
        mlflow_log.setLevel(level)


def _summary(m: dict[str, float]) -> str:
    keys = [k for k in ("train_acc", "val_acc", "test_acc", "test_acc_at_0.9_calibrated",
                        "test_abstain_at_0.9_calibrated", "test_ece", "test_ece_calibrated", "temperature") if k in m]
    return ", ".join(f"{k} {m[k]:.4f}" for k in keys)
