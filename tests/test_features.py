"""Frozen features: mid-level blocks beside the final features, per view, and their disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_jpeg

from deepmars.config import ModelConfig
from deepmars.errors import ConfigError
from deepmars.models import factory
from deepmars.models.factory import head_prefix
from deepmars.models.tta import apply_view
from deepmars.schema import load
from deepmars.training import features
from deepmars.training.features import cache_key, features_for, view_features

TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}


def build_model(cfg, num_classes: int, **kwargs):
    return factory.build_model(load(ModelConfig, cfg, prefix="model"), num_classes, **kwargs)


def test_feature_blocks_feed_the_head_the_pooled_block_outputs_after_the_final_features():
    torch.manual_seed(0)
    plain, _ = build_model(TINY, 3)
    torch.manual_seed(0)
    multi, pre = build_model({**TINY, "feature_blocks": [1, 2]}, 3)
    assert head_prefix(multi) == "classifier"
    backbone = plain.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        h = backbone.bn1(backbone.conv_stem(x))
        pooled = []
        for i, block in enumerate(backbone.blocks):
            h = block(h)
            if i in (1, 2):
                pooled.append(h.mean((2, 3)))
        expected = torch.cat([backbone.forward_head(backbone.bn2(backbone.conv_head(h)), pre_logits=True), *pooled], 1)
    captured = []
    multi.classifier.register_forward_hook(lambda m, a, o: captured.append(a[0]))
    multi.eval()(x)
    assert multi.classifier.in_features == expected.shape[1]
    torch.testing.assert_close(captured[0], expected)


def test_bad_feature_blocks_name_the_key():
    with pytest.raises(ConfigError, match=r"model.feature_blocks: \[9\] out of range"):
        build_model({**TINY, "feature_blocks": [9]}, 3)
    with pytest.raises(ConfigError, match="model.feature_blocks: needs model.source=timm"):
        build_model({"source": "torchvision", "name": "alexnet", "pretrained": "none", "feature_blocks": [1]}, 3)


def test_bundle_with_feature_blocks_round_trips(tmp_path):
    from deepmars.models.bundle import ModelBundle

    model, pre = build_model({**TINY, "feature_blocks": [2]}, 3)
    bundle = ModelBundle(model=model.eval(), model_cfg={**TINY, "feature_blocks": [2]}, class_names=list("abc"),
                         preprocess=pre)
    loaded = ModelBundle.load(bundle.save(tmp_path / "m.pt"))
    batch = pre.eval_batch(np.zeros((2, 72, 72, 3), dtype=np.uint8))
    assert np.allclose(loaded.predict_proba(batch), bundle.predict_proba(batch), atol=1e-6)


def test_view_features_are_per_image_and_view(tmp_path):
    torch.manual_seed(0)
    model, pre = build_model(TINY, 3)
    head = model.get_submodule("classifier")
    images = np.random.default_rng(0).integers(0, 255, (5, 72, 72, 3), dtype=np.uint8)
    feats = view_features(model, head, images, pre, ("identity", "rot90"), batch_size=2)
    assert feats.shape == (5, 2, head.in_features)
    with torch.no_grad():
        x = apply_view(pre.eval_batch(images[3:4]), "rot90")
        expected = model.eval().forward_head(model.forward_features(x), pre_logits=True)
    assert np.allclose(feats[3, 1], expected[0].numpy(), atol=1e-5)


def test_cache_reuses_features_by_image_content_and_keys_by_what_makes_them(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, pre = build_model(TINY, 3)
    head = model.get_submodule("classifier")
    paths = [write_jpeg(tmp_path / "img" / f"{i}.jpg", shade=40 * i) for i in range(3)]
    images = np.stack([pre.decode(p) for p in paths])
    first = features_for(model, head, images, paths, pre, ("identity", "hflip"), model_cfg=TINY,
                         cache_dir=str(tmp_path / "cache"))
    computed = []
    real = features.view_features
    monkeypatch.setattr(features, "view_features", lambda m, h, imgs, *a, **k: computed.append(len(imgs)) or real(m, h, imgs, *a, **k))
    renamed = tmp_path / "img" / "renamed.jpg"
    paths[1].rename(renamed)  # same content, new name: still cached
    again = features_for(model, head, images, [paths[0], renamed, paths[2]], pre, ("hflip", "identity"),
                         model_cfg=TINY, cache_dir=str(tmp_path / "cache"))
    assert computed == [] and np.array_equal(again, first[:, ::-1])
    new = write_jpeg(tmp_path / "img" / "new.jpg", shade=200)
    features_for(model, head, np.stack([images[0], pre.decode(new)]), [paths[0], new], pre, ("identity",),
                 model_cfg=TINY, cache_dir=str(tmp_path / "cache"))
    assert computed == [1]  # only the new image
    keys = {cache_key(TINY, pre, "float32"), cache_key(TINY, pre, "bfloat16"),
            cache_key({**TINY, "feature_blocks": [1]}, pre, "float32"), cache_key({**TINY, "name": "other"}, pre, "float32")}
    assert len(keys) == 4
