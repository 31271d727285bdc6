"""A linear head on frozen features: fit it, score with it, and make it a model bundle predict.py runs.

The head is a multinomial logistic regression (``deepmars.training.head_init.fit_probe``, the
same fit LP-FT starts from). Retraining it on the old labels plus a new batch is a convex
problem: starting from the parent's head or from zero reaches the same solution, so the parent
is recorded as lineage (whose posteriors chose the batch, whose backbone gives the features),
not as an initial point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from deepmars.models.bundle import ModelBundle
from deepmars.models.factory import build_model, head_prefix
from deepmars.retraining.features import model_spec
from deepmars.training.head_init import fit_probe


@dataclass(frozen=True)
class LinearHead:
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    train_acc: float

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def accuracy(self, features: np.ndarray, targets: np.ndarray) -> float:
        return float((self.probabilities(features).argmax(axis=1) == targets).mean()) if len(targets) else float("nan")


def fit_head(features: np.ndarray, targets: np.ndarray, num_classes: int, c: float = 1.0) -> LinearHead:
    weight, bias, train_acc = fit_probe(features, targets, num_classes, c)
    return LinearHead(weight, bias, train_acc)


def head_bundle(head: LinearHead, model_cfg: Mapping, class_names: Sequence[str], dataset: Mapping,
                model_id: str = "") -> ModelBundle:
    """The frozen pretrained backbone with ``head`` as its final layer, as a bundle predict.py loads."""
    spec = model_spec(model_cfg)
    model, pre = build_model(spec, len(class_names))
    layer = model.get_submodule(head_prefix(model, spec.head))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(head.weight))
        layer.bias.copy_(torch.from_numpy(head.bias))
    model.eval()
    return ModelBundle(model=model, model_cfg=dict(model_cfg), class_names=list(class_names), preprocess=pre,
                       temperature=1.0, dataset=dict(dataset), model_id=model_id)
