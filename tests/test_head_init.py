"""LP-FT's first stage: the head fitted by a linear probe predicts what the probe predicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from torch import nn

from deepmars.data.cache import DecodedImages
from deepmars.data.transforms import Preprocess
from deepmars.training.head_init import fit_probe, init_head_by_probe, penultimate_features


def blobs(n_per: int, classes: list[int], dim: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (max(classes) + 1, dim))
    x = np.concatenate([centers[c] + rng.normal(0, 1, (n_per, dim)) for c in classes])
    y = np.repeat(classes, n_per)
    return x.astype(np.float64), y


@pytest.mark.slow
def test_probe_head_reproduces_logistic_regression_and_never_predicts_absent_classes():
    x, y = blobs(30, [0, 1, 3])  # class 2 has no training image
    weight, bias, acc = fit_probe(x, y, 4, c=1.0)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    ours = (x @ weight.T + bias).argmax(1)
    np.testing.assert_array_equal(ours, ref.predict(x))
    assert acc == pytest.approx(ref.score(x, y))
    assert np.all(weight[2] == 0) and bias[2] < bias[[0, 1, 3]].min() - 9.9
    probs = torch.softmax(torch.from_numpy(x @ weight.T + bias), 1).numpy()
    np.testing.assert_allclose(probs[:, [0, 1, 3]], ref.predict_proba(x), atol=1e-5)


def test_two_present_classes_give_the_same_posteriors_as_the_binary_probe():
    x, y = blobs(25, [1, 2])
    weight, bias, _ = fit_probe(x, y, 3, c=0.5)
    ref = LogisticRegression(C=0.5, max_iter=2000).fit(x, y)
    logits = torch.from_numpy(x @ weight.T + bias)
    probs = torch.softmax(logits, 1).numpy()
    np.testing.assert_allclose(probs[:, [1, 2]] / probs[:, [1, 2]].sum(1, keepdims=True), ref.predict_proba(x), atol=1e-5)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.body(x))


def test_init_head_sets_the_networks_head_to_the_probe_on_its_own_features():
    torch.manual_seed(0)
    net = Net()
    pre = Preprocess(img_size=8, resize=8)
    rng = np.random.default_rng(1)
    targets = np.repeat([0, 1, 2], 10)
    images = np.stack([np.full((8, 8, 3), 60 * t, np.uint8) + rng.integers(0, 40, (8, 8, 3), dtype=np.uint8)
                       for t in targets])
    data = DecodedImages(images=images, targets=targets, samples=[None] * len(targets))
    metrics = init_head_by_probe(net, net.head, data, pre)
    feats = penultimate_features(net, net.head, images, pre)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(feats, targets)
    with torch.no_grad():
        pred = net(pre.eval_batch(images)).argmax(1).numpy()
    np.testing.assert_array_equal(pred, ref.predict(feats))
    assert metrics["linear_probe_train_acc"] == pytest.approx(ref.score(feats, targets))


def test_a_head_that_is_not_linear_is_refused():
    with pytest.raises(TypeError, match="nn.Linear"):
        init_head_by_probe(Net(), nn.Identity(), None, None)


def test_the_probe_is_the_same_whatever_number_of_blas_threads_the_caller_runs():
    # wide and overlapping enough that the fit's matrix products are split across BLAS threads
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1500, 600)).astype(np.float32)
    y = (x[:, :6] @ rng.normal(0, 1, (6, 5)) + rng.normal(0, 2, (1500, 5))).argmax(1)
    fits = []
    for threads in (2, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            fits.append(fit_probe(x, y, 5, c=0.3))
    for a, b in zip(*fits, strict=True):
        np.testing.assert_array_equal(a, b)
