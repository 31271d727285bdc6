"""Test-time augmentation: the views, their combination, and the bundle that applies them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmars.config import ModelConfig
from deepmars.errors import ConfigError
from deepmars.inference.logits import predict_logits
from deepmars.models import factory
from deepmars.models.bundle import ModelBundle
from deepmars.models.tta import PRESETS, VIEWS, apply_view, combine_views, expand_views, views_for
from deepmars.schema import load

TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}


def build_model(cfg, num_classes: int, **kwargs):
    return factory.build_model(load(ModelConfig, cfg, prefix="model"), num_classes, **kwargs)


def test_dihedral_views_are_the_eight_distinct_symmetries_of_the_square():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    images = {v: tuple(apply_view(x, v).flatten().tolist()) for v in PRESETS["dihedral"]}
    assert len(set(images.values())) == 8
    assert images["hflip"] == tuple(x.flip(3).flatten().tolist())  # left-right mirror
    assert images["rot180"] == tuple(x.flip(2).flip(3).flatten().tolist())
    assert PRESETS["hflip"] == ("identity", "hflip") and PRESETS["none"] == ("identity",)


@pytest.mark.parametrize("view", list(VIEWS))
def test_views_turn_as_torch_rot90_does(view):
    # the views are made without rot90 (the ONNX exporter has none); they must be its exact turns
    x = torch.randn(2, 3, 5, 5)
    turns, mirror = VIEWS[view]
    expected = torch.rot90(x.flip(3) if mirror else x, turns, dims=(2, 3))
    assert torch.equal(apply_view(x, view), expected)
    assert torch.equal(apply_view(x.permute(0, 2, 3, 1), view, spatial_dims=(1, 2)), expected.permute(0, 2, 3, 1))


def test_expand_is_view_major_and_keeps_channels_last():
    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    out = expand_views(x, PRESETS["dihedral"])
    assert out.shape == (16, 3, 4, 4) and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out[2:4], apply_view(x, "rot90")) and torch.equal(out[:2], x)
    assert expand_views(x, ("identity",)) is x


def test_combine_is_the_log_of_the_mean_softmax():
    logits = torch.randn(3 * 4, 5)
    combined = combine_views(logits, 3)
    expected = torch.softmax(logits.reshape(3, 4, 5), dim=-1).mean(0)
    assert torch.allclose(torch.softmax(combined, dim=1), expected, atol=1e-6)
    assert torch.allclose(combined.exp().sum(1), torch.ones(4), atol=1e-6)
    assert np.allclose(combine_views(logits.numpy(), 3), combined.numpy(), atol=1e-6)
    assert combine_views(logits, 1) is logits


@pytest.mark.parametrize("setting, message", [
    ("rotations", "model.tta: got 'rotations', allowed: one of"), (["identity", "spin"], "model.tta: got"),
])
def test_bad_tta_setting_names_the_key(setting, message):
    with pytest.raises(ConfigError, match=message):
        load(ModelConfig, {**TINY, "tta": setting}, prefix="model")


def test_tta_setting_forms():
    assert views_for(None) == views_for("none") == ("identity",)
    assert views_for(["identity", "rot90"]) == ("identity", "rot90")
    assert views_for(load(ModelConfig, {**TINY, "tta": "dihedral"}, prefix="model").tta) == tuple(VIEWS)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model, pre = build_model(TINY, 3)
    return model.eval(), pre


def test_bundle_averages_the_views_in_probability_space_and_keeps_them_on_save(tmp_path, tiny):
    model, pre = tiny
    images = np.random.default_rng(0).integers(0, 255, (4, 72, 72, 3), dtype=np.uint8)
    batch = pre.eval_batch(images)
    bundle = ModelBundle(model=model, model_cfg={**TINY, "tta": "dihedral"}, class_names=["a", "b", "c"],
                         preprocess=pre, temperature=0.7, tta=PRESETS["dihedral"])
    with torch.inference_mode():
        per_view = torch.stack([torch.softmax(model(apply_view(batch, v)), 1) for v in PRESETS["dihedral"]])
    mean = per_view.mean(0).double()
    expected = (mean ** (1 / 0.7) / (mean ** (1 / 0.7)).sum(1, keepdim=True)).numpy()
    assert np.allclose(bundle.predict_proba(batch), expected, atol=1e-5)
    loaded = ModelBundle.load(bundle.save(tmp_path / "model.pt"))
    assert loaded.tta == PRESETS["dihedral"]
    assert np.allclose(loaded.predict_proba(batch), expected, atol=1e-5)
    # the evaluation path (re-evaluation, training's report) combines the views the same way
    logits = predict_logits(model, images, pre, batch_size=3, views=PRESETS["dihedral"])
    assert np.allclose(torch.softmax(logits.double() / 0.7, 1).numpy(), expected, atol=1e-5)


def test_a_bundle_saved_without_views_predicts_as_before(tmp_path, tiny):
    model, pre = tiny
    bundle = ModelBundle(model=model, model_cfg=TINY, class_names=["a", "b", "c"], preprocess=pre, temperature=2.0)
    state = bundle.to_state()
    del state["tta"]  # a bundle written before test-time views existed
    torch.save(state, tmp_path / "old.pt")
    loaded = ModelBundle.load(tmp_path / "old.pt")
    batch = pre.eval_batch(np.zeros((2, 72, 72, 3), dtype=np.uint8))
    with torch.inference_mode():
        expected = torch.softmax(model(batch) / 2.0, 1).numpy()
    assert loaded.tta == ("identity",)
    assert np.allclose(loaded.predict_proba(batch), expected, atol=1e-6)
