"""Per-layer LR multipliers: exact LRs, freezing, Caffe bias convention, pattern errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepmars.config import ModelConfig
from deepmars.errors import ConfigError
from deepmars.models.factory import build_model, head_prefix
from deepmars.training.param_groups import build_param_groups, describe_param_groups


class Small(nn.Module):
    """Names like a real backbone: features.0 (conv), features.1 (norm), classifier.6 (head)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.classifier = nn.Sequential(*[nn.Identity()] * 6, nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def lr_by_name(groups: list[dict]) -> dict[str, tuple[float, float]]:
    return {n: (g["lr"], g["weight_decay"]) for g in groups for n in g["param_names"]}


def test_exact_lrs_last_matching_pattern_wins():
    groups = build_param_groups(Small(), 1e-4, 5e-4, {"features.*": 3, "features.1": 5, "head": 25},
                                head_prefix="classifier.6")
    assert lr_by_name(groups) == {
        "features.0.weight": (pytest.approx(3e-4), 5e-4), "features.0.bias": (pytest.approx(3e-4), 5e-4),
        "features.1.weight": (pytest.approx(5e-4), 5e-4), "features.1.bias": (pytest.approx(5e-4), 5e-4),
        "classifier.6.weight": (pytest.approx(2.5e-3), 5e-4), "classifier.6.bias": (pytest.approx(2.5e-3), 5e-4),
    }
    assert [(g["name"], g["lr_mult"]) for g in groups] == [("features.*", 3), ("features.1", 5), ("head", 25)]


def test_unmatched_parameters_get_multiplier_one():
    groups = build_param_groups(Small(), 0.01, 0.0, {"classifier.6.*": 10})
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("default", 0.01, 4), ("classifier.6.*", pytest.approx(0.1), 2)]


def test_zero_freezes_and_keeps_out_of_optimizer():
    torch.manual_seed(0)  # an unlucky draw can leave every ReLU of the tiny net dead: no gradient at all
    model = Small()
    groups = build_param_groups(model, 0.1, 0.0, {"features.0": 0})
    names = {n for g in groups for n in g["param_names"]}
    assert "features.0.weight" not in names and "features.0.bias" not in names
    assert not model.features[0].weight.requires_grad and model.features[1].weight.requires_grad
    frozen, trained = model.features[0].weight.detach().clone(), model.classifier[6].weight.detach().clone()
    opt = torch.optim.SGD(groups, lr=0.1)
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    assert torch.equal(model.features[0].weight, frozen)
    assert not torch.equal(model.classifier[6].weight, trained)


def test_caffe_bias_convention():
    groups = build_param_groups(Small(), 1e-3, 5e-4, {"head": 10}, bias_lr_mult=2.0, bias_decay=False,
                                head_prefix="classifier.6")
    by_name = lr_by_name(groups)
    assert by_name["features.0.weight"] == (pytest.approx(1e-3), 5e-4)
    assert by_name["features.0.bias"] == (pytest.approx(2e-3), 0.0)
    assert by_name["classifier.6.weight"] == (pytest.approx(1e-2), 5e-4)
    assert by_name["classifier.6.bias"] == (pytest.approx(2e-2), 0.0)
    assert {g["name"]: g["lr_mult"] for g in groups} == {
        "default": 1.0, "default/bias": 2.0, "head": 10.0, "head/bias": 20.0}


def test_pattern_matching_nothing_is_an_error_with_examples():
    with pytest.raises(ConfigError, match=r"pattern 'clasifier\.\*' matches no parameter.*features\.0\.weight"):
        build_param_groups(Small(), 0.1, 0.0, {"features.*": 1, "clasifier.*": 10})


def test_head_key_needs_the_head_prefix_and_bad_multipliers_fail():
    with pytest.raises(ConfigError, match="optim.lr_mult.head"):
        build_param_groups(Small(), 0.1, 0.0, {"head": 10})
    with pytest.raises(ConfigError, match="optim.lr_mult.features.0"):
        build_param_groups(Small(), 0.1, 0.0, {"features.0": -1})
    with pytest.raises(ConfigError, match="nothing left to train"):
        build_param_groups(Small(), 0.1, 0.0, {"*": 0})


def test_head_key_on_a_real_backbone():
    model, _ = build_model(ModelConfig(source="timm", name="test_efficientnet", pretrained="none"), 6)
    groups = build_param_groups(model, 1e-4, 5e-4, {"head": 25}, head_prefix=head_prefix(model))
    assert groups[-1]["name"] == "head" and groups[-1]["param_names"] == ["classifier.weight", "classifier.bias"]
    assert groups[-1]["lr"] == pytest.approx(2.5e-3)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_describe_lists_each_group():
    groups = build_param_groups(Small(), 1e-4, 5e-4, {"head": 25}, bias_lr_mult=2, bias_decay=False,
                                head_prefix="classifier.6")
    lines = describe_param_groups(groups).splitlines()
    assert lines[0].split() == ["group", "tensors", "params", "lr", "weight_decay"]
    assert lines[1].split() == ["default", "2", "112", "0.0001", "0.0005"]  # conv 108 + norm 4
    assert lines[4].split() == ["head/bias", "1", "2", "0.005", "0"]
