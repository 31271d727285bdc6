"""A frozen-backbone recipe: pretrained features, a logistic-regression head, no fine-tuning.

``trainer.fine_tune=false`` (with ``trainer.head_init=linear_probe``) trains only the new final
layer, by logistic regression on the frozen penultimate features of the training images, and
keeps the backbone exactly as pretrained. With test-time views (``model.tta``) each training
image's features are averaged over the views before the fit; predictions average the views'
posteriors (deepmars.models.tta), as the saved bundle does for predict.py and landmarks.py.
The inverse regularisation C is chosen on val among ``trainer.probe_c_choices`` (or
``trainer.probe_c``). The result is an ordinary model bundle.

Features come from the cache (``trainer.feature_cache``) when present, so a cross-validation
sweep computes each image's features once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig

from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import LabeledDataset, Sample
from deepmars.evaluation import SplitPredictions
from deepmars.evaluation.apply import predictions_for
from deepmars.models.factory import head_prefix
from deepmars.models.tta import views_for
from deepmars.models.tta import combine_views
from deepmars.training.features import features_for
from deepmars.training.finish import report_and_save
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
    best = None
    for c in probe_choices(cfg):
        weight, bias, train_acc = fit_probe(feats["train"].mean(1), train_data.targets, head.out_features, c)
        val_acc = float((view_logits(feats["val"], weight, bias).argmax(1) == val.targets).mean())
        log.info("probe C=%g: train accuracy %.4f, val accuracy %.4f", c, train_acc, val_acc)
        session.log_metrics({f"probe_val_acc_c_{c:g}": val_acc})
        if best is None or val_acc > best[0]:
            best = (val_acc, c, weight, bias, train_acc)
    val_acc, c, weight, bias, train_acc = best
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    preds: dict[str, SplitPredictions] = {
        name: predictions_for(data[name], logits=view_logits(feats[name], weight, bias))
        for name in cfg.trainer.eval_splits}
    extra = {"best_val_acc": val_acc, "probe_c": c, "linear_probe_train_acc": train_acc}
    return report_and_save(cfg, session, model, ds, pre, preds, checkpoint_dir, extra)
