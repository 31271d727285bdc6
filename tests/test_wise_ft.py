"""WiSE-FT: weight interpolation between the starting and the fine-tuned model, alpha chosen on val."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmars.config import ModelConfig
from deepmars.data.cache import DecodedImages
from deepmars.errors import ConfigError
from deepmars.models import factory
from deepmars.schema import load
from deepmars.training.wise_ft import check_alphas, choose_alpha, interpolate

TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}


def build_model(cfg, num_classes: int, **kwargs):
    return factory.build_model(load(ModelConfig, cfg, prefix="model"), num_classes, **kwargs)


def test_interpolation_is_linear_in_every_floating_tensor_and_keeps_counters():
    start = {"w": torch.zeros(2, 2), "n": torch.tensor(3)}
    tuned = {"w": torch.ones(2, 2) * 4, "n": torch.tensor(7)}
    assert torch.equal(interpolate(start, tuned, 0.0)["w"], start["w"])
    assert torch.equal(interpolate(start, tuned, 1.0)["w"], tuned["w"])
    mid = interpolate(start, tuned, 0.25)
    assert torch.allclose(mid["w"], torch.ones(2, 2)) and int(mid["n"]) == 7
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate({"w": start["w"]}, tuned, 0.5)


@pytest.mark.parametrize("alphas", [[], [0.5, 1.5], [-0.1]])
def test_bad_alphas_name_the_key(alphas):
    with pytest.raises(ConfigError, match="trainer.wise_ft_alphas"):
        check_alphas(alphas)


def test_alpha_is_chosen_by_val_accuracy_and_loaded_into_the_model():
    torch.manual_seed(0)
    model, pre = build_model(TINY, 2)
    images = np.random.default_rng(0).integers(0, 255, (12, 72, 72, 3), dtype=np.uint8)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # the "fine-tuned" model predicts class 1 for everything; start predicts class 0
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 50.0]))
        start["classifier.weight"].zero_()
        start["classifier.bias"].copy_(torch.tensor([50.0, 0.0]))
    tuned = {k: v.clone() for k, v in model.state_dict().items()}
    val = DecodedImages(images=images, targets=np.array([0] * 9 + [1] * 3), samples=[None] * 12)
    alpha, metrics = choose_alpha(model, start, val, pre, [1.0, 0.6, 0.2, 0.0])
    assert alpha == 0.2  # the first listed alpha with the best val accuracy (0.75, as for 0.0)
    assert metrics["wise_ft_val_acc_alpha_1"] == pytest.approx(0.25)
    assert metrics["wise_ft_val_acc"] == pytest.approx(0.75) and metrics["wise_ft_alpha"] == 0.2
    expected = interpolate(start, tuned, 0.2)
    assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected)
