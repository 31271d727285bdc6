"""Initialising the new final layer by a linear probe before fine-tuning (LP-FT).

Fine-tuning a pretrained network from a random head lets the large early gradients of that head
distort the pretrained features; with a head already fitted to the frozen features, fine-tuning
starts from a good solution and moves the backbone less. Kumar et al. (ICLR 2022, "Fine-Tuning can
Distort Pretrained Features and Underperform Out-of-Distribution") show this helps most under
distribution shift, which is exactly Deep Mars' situation: MSL test lies in the rover's future,
HiRISE test in other source images.

The probe is a multinomial logistic regression (scikit-learn, L-BFGS, deterministic) on the
penultimate features of the training images, centre-cropped, in eval mode.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from torch import nn

from deepmars.data.cache import DecodedImages
from deepmars.data.transforms import Preprocess
from deepmars.devices import model_device

log = logging.getLogger(__name__)

# A class with no training image gets this bias below the smallest fitted one: never predicted
# at the start, free to be learned if fine-tuning meets it.
ABSENT_CLASS_MARGIN = 10.0


@torch.inference_mode()
def penultimate_features(model: nn.Module, head: nn.Linear, images: np.ndarray, pre: Preprocess,
                         batch_size: int = 100) -> np.ndarray:
    """The head's input for each image (captured by a hook, so any backbone works)."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, args, out: captured.append(args[0].detach().float().cpu()))
    device = model_device(model)
    try:
        model.eval()
        for i in range(0, len(images), batch_size):
            model(pre.eval_batch(images[i:i + batch_size], device))
    finally:
        hook.remove()
    return torch.cat(captured).reshape(len(images), -1).numpy()


def fit_probe(features: np.ndarray, targets: np.ndarray, num_classes: int,
              c: float, class_balanced: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """(weight C x D, bias C, training accuracy) of a logistic regression on ``features``.

    ``class_balanced`` weights each image by n / (k * its class's count) over the k classes present,
    so every class weighs the same in the loss: under strong regularisation an unweighted fit
    gives up the rare classes for the common ones.
    """
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if class_balanced else None)
    # On one BLAS thread: threads split the sums of the fit's matrix products differently, and
    # L-BFGS amplifies that rounding (head weights 0.04 apart between 1 and 2 threads on HiRISE,
    # enough to flip a tie in the choice of C); the same fit on any core count.
    with threadpool_limits(limits=1, user_api="blas"):
        clf.fit(features, targets)
    weight = np.zeros((num_classes, features.shape[1]), dtype=np.float32)
    bias = np.full(num_classes, clf.intercept_.min() - ABSENT_CLASS_MARGIN, dtype=np.float32)
    present = clf.classes_
    if len(present) == 2:  # scikit-learn keeps one row for two classes: logit of class 1 vs 0
        weight[present[1]], bias[present[1]] = clf.coef_[0] / 2, clf.intercept_[0] / 2
        weight[present[0]], bias[present[0]] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
    else:
        weight[present], bias[present] = clf.coef_, clf.intercept_
    return weight, bias, float(clf.score(features, targets))


def init_head_by_probe(model: nn.Module, head: nn.Module, train: DecodedImages, pre: Preprocess,
                       c: float = 1.0, batch_size: int = 100, class_balanced: bool = False) -> dict[str, float]:
    """Replace the head's weights by the probe's; returns metrics to log."""
    if not isinstance(head, nn.Linear):
        raise TypeError(f"the linear probe needs an nn.Linear head, got {type(head).__name__}")
    features = penultimate_features(model, head, train.images, pre, batch_size)
    weight, bias, train_acc = fit_probe(features, train.targets, head.out_features, c, class_balanced)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    log.info("head initialised by a linear probe on %d frozen-feature vectors (C=%g): train accuracy %.4f",
             len(features), c, train_acc)
    return {"linear_probe_train_acc": train_acc}
