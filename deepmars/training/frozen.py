"""A frozen-backbone recipe: pretrained features, a logistic-regression head, no fine-tuning.

``trainer.fine_tune=false`` (with ``trainer.head_init=linear_probe``) trains only the new final
layer, by logistic regression on the frozen penultimate features of the training images, and
keeps the backbone exactly as pretrained. With test-time views (``model.tta``) each training
image's features are averaged over the views before the fit; predictions average the views'
posteriors (deepmars.models.tta), as the saved bundle does for predict.py and landmarks.py.
The inverse regularisation C is chosen on val among ``trainer.probe_c_choices`` (or
``trainer.probe_c``). With ``trainer.class_balance=loss`` every class weighs the same in the fit
(each image by n / (k * its class's count)). The result is an ordinary model bundle.

With ``trainer.refit_on_train_val`` the head that is saved is fitted once more, after every
choice is made: on train and val together, with the C chosen on val. C and the temperature rule
(``trainer.calibration``) are chosen with the head fitted on train only, exactly as without the
refit; that head's val predictions are the ones reported and calibrated on (val is no longer
held out from the saved head), and every other split is predicted by the refit head, whose
posteriors are scaled by the temperature chosen on val. Under drift (MSL's val sols lie between
train and test) the later labelled images move the head towards the test distribution.

Features come from the cache (``trainer.feature_cache``) when present, so a cross-validation
sweep computes each image's features once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import LabeledDataset, Sample
from deepmars.evaluation import SplitPredictions
from deepmars.evaluation.apply import predictions_for
from deepmars.models.factory import head_prefix
from deepmars.models.tta import combine_views, views_for
from deepmars.training.features import features_for
from deepmars.training.finish import report_and_save, with_source_prior
from deepmars.training.head_init import fit_probe

log = logging.getLogger(__name__)


def probe_choices(cfg: DictConfig) -> list[float]:
    choices = cfg.trainer.get("probe_c_choices") or [cfg.trainer.probe_c]
    return [float(c) for c in choices]


def view_logits(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(N, V, D) features -> (N, C) log of the views' mean softmax, as the bundle computes it."""
    n, v, _ = features.shape
    z = features.transpose(1, 0, 2).reshape(v * n, -1) @ weight.T + bias  # view-major, like expand_views
    return np.asarray(combine_views(torch.from_numpy(z.astype(np.float32)), v)).reshape(n, -1)


@dataclass
class FrozenHead:
    """The head chosen on val (fitted on train) and the head saved (the same, or refit on train + val)."""

    c: float
    weight: np.ndarray  # fitted on train with c: its val predictions chose c and the temperature
    bias: np.ndarray
    train_acc: float
    val_acc: float
    val_acc_by_c: dict[float, float]
    final_weight: np.ndarray  # the saved head
    final_bias: np.ndarray
    refit_train_val_acc: float | None = None  # the refit head's accuracy on train + val (fitted on them)


def fit_frozen_head(train_feats: np.ndarray, train_targets: np.ndarray, val_feats: np.ndarray,
                    val_targets: np.ndarray, num_classes: int, choices: Sequence[float],
                    refit_on_train_val: bool = False, class_balanced: bool = False) -> FrozenHead:
    """C by val accuracy of heads fitted on train (first listed wins a tie); then the optional refit.

    Features are (N, V, D): the fit sees each image's mean over the views, val is scored as the
    bundle predicts (the views' mean posterior).
    """
    best = None
    by_c: dict[float, float] = {}
    for c in choices:
        weight, bias, train_acc = fit_probe(train_feats.mean(1), train_targets, num_classes, c, class_balanced)
        val_acc = float((view_logits(val_feats, weight, bias).argmax(1) == val_targets).mean())
        log.info("probe C=%g: train accuracy %.4f, val accuracy %.4f", c, train_acc, val_acc)
        by_c[c] = val_acc
        if best is None or val_acc > best[0]:
            best = (val_acc, c, weight, bias, train_acc)
    val_acc, c, weight, bias, train_acc = best
    head = FrozenHead(c=c, weight=weight, bias=bias, train_acc=train_acc, val_acc=val_acc, val_acc_by_c=by_c,
                      final_weight=weight, final_bias=bias)
    if refit_on_train_val:
        feats = np.concatenate([train_feats.mean(1), val_feats.mean(1)])
        targets = np.concatenate([train_targets, val_targets])
        head.final_weight, head.final_bias, head.refit_train_val_acc = fit_probe(feats, targets, num_classes, c,
                                                                                 class_balanced)
        log.info("head refit on train + val (%d images) with C=%g: accuracy on them %.4f",
                 len(targets), c, head.refit_train_val_acc)
    return head


def split_logits(fitted: FrozenHead, split: str, feats: np.ndarray) -> np.ndarray:
    """Val as the head fitted on train saw it (the temperature rule chooses on these); the rest by the saved head."""
    if split == "val":
        return view_logits(feats, fitted.weight, fitted.bias)
    return view_logits(feats, fitted.final_weight, fitted.final_bias)


def train_frozen(cfg: DictConfig, session, model: torch.nn.Module, pre, ds: LabeledDataset,
                 splits: dict[str, list[Sample]], train_data: DecodedImages, val: DecodedImages,
                 decode_split: Callable, checkpoint_dir) -> float:
    views = views_for(cfg.model.tta)
    head = model.get_submodule(head_prefix(model, cfg.model.head))
    data = {"train": train_data, "val": val}
    for name in cfg.trainer.eval_splits:
        if name not in data:
            data[name] = decode_split(cfg, splits[name], pre, name)
    feats = {name: features_for(model, head, d.images, [s.path for s in d.samples], pre, views,
                                model_cfg=cfg.model, cache_dir=cfg.trainer.get("feature_cache"),
                                batch_size=int(cfg.trainer.eval_batch_size),
                                dtype=str(cfg.trainer.get("feature_dtype") or "float32"))
             for name, d in data.items()}
    fitted = fit_frozen_head(feats["train"], train_data.targets, feats["val"], val.targets, head.out_features,
                             probe_choices(cfg), bool(cfg.trainer.get("refit_on_train_val")),
                             class_balanced=cfg.trainer.class_balance == "loss")
    session.log_metrics({f"probe_val_acc_c_{c:g}": acc for c, acc in fitted.val_acc_by_c.items()})
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(fitted.final_weight))
        head.bias.copy_(torch.from_numpy(fitted.final_bias))
    preds: dict[str, SplitPredictions] = {
        name: predictions_for(data[name], logits=split_logits(fitted, name, feats[name]))
        for name in cfg.trainer.eval_splits}
    extra = {"best_val_acc": fitted.val_acc, "probe_c": fitted.c, "linear_probe_train_acc": fitted.train_acc}
    if fitted.refit_train_val_acc is not None:
        extra["refit_train_val_acc"] = fitted.refit_train_val_acc
    fitted_on = [train_data.targets] + ([val.targets] if fitted.refit_train_val_acc is not None else [])
    preds, prior = with_source_prior(cfg, preds, {name: data[name].samples for name in preds},
                                     np.concatenate(fitted_on), head.out_features, extra)
    return report_and_save(cfg, session, model, ds, pre, preds, checkpoint_dir, extra, class_prior=prior)
