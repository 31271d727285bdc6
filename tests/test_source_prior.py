"""Each source image's class prior re-estimated from its landmarks: the EM's fixed point, its limits,
its groups, and the bundle that carries it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmars.config import ModelConfig
from deepmars.data.dataset import Sample
from deepmars.errors import ConfigError
from deepmars.evaluation.calibration import softmax
from deepmars.evaluation.sources import sources_of
from deepmars.models.source_prior import MIN_PRIOR, adapt_by_source, adapt_prior, adapted_logits, class_prior
from deepmars.schema import load


def _posteriors(n: int, classes: int, seed: int) -> np.ndarray:
    return softmax(np.random.default_rng(seed).normal(0, 2, (n, classes)))


def test_the_adapted_posteriors_are_the_em_fixed_point_with_the_dirichlet_pseudo_counts():
    probs, prior, strength = _posteriors(40, 4, 0), np.array([0.4, 0.3, 0.2, 0.1]), 7.0
    q = adapt_prior(probs, prior, strength)
    estimate = (q.sum(0) + strength * prior) / (len(q) + strength)  # the prior these posteriors imply
    expected = probs * (estimate / prior)
    np.testing.assert_allclose(q, expected / expected.sum(1, keepdims=True), atol=1e-8)
    np.testing.assert_allclose(q.sum(1), 1.0)


def test_a_strong_dirichlet_keeps_the_training_prior_and_a_weak_one_follows_the_image():
    probs, prior = _posteriors(30, 3, 1), np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(adapt_prior(probs, prior, 1e9), probs, atol=1e-6)
    moved = [np.abs(adapt_prior(probs, prior, s) - probs).mean() for s in (100.0, 10.0, 1.0)]
    assert moved[0] < moved[1] < moved[2]


def test_a_shifted_image_gets_its_own_prior_back_and_more_landmarks_right():
    # Two classes, x ~ N(-1, 1) or N(+1, 1), trained at 50/50: the exact posterior is sigmoid(2x).
    # An image holding 90% of class 0 is classified better once its prior is re-estimated.
    rng = np.random.default_rng(2)
    y = (np.arange(1000) >= 900).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    p1 = 1 / (1 + np.exp(-2 * x))
    probs = np.stack([1 - p1, p1], 1)
    q = adapt_prior(probs, np.array([0.5, 0.5]), strength=1.0)
    assert q.mean(0)[0] == pytest.approx(0.9, abs=0.03)
    assert (q.argmax(1) == y).mean() > (probs.argmax(1) == y).mean() + 0.03


def test_each_source_is_adapted_alone_in_any_row_order_and_rows_without_a_source_stay():
    a, b, lone = _posteriors(12, 3, 3), _posteriors(5, 3, 4), _posteriors(2, 3, 5)
    prior = np.array([0.6, 0.3, 0.1])
    rows = np.concatenate([a, b, lone])
    sources = ["A"] * 12 + ["B"] * 5 + [None, ""]
    order = np.random.default_rng(6).permutation(len(rows))
    shuffled = adapt_by_source(rows[order], [sources[i] for i in order], prior, 4.0)
    out = np.empty_like(shuffled)
    out[order] = shuffled
    np.testing.assert_allclose(out[:12], adapt_prior(a, prior, 4.0), atol=1e-10)
    np.testing.assert_allclose(out[12:17], adapt_prior(b, prior, 4.0), atol=1e-10)
    np.testing.assert_array_equal(out[17:], lone)
    with pytest.raises(ValueError, match="2 source names for 19 rows"):
        adapt_by_source(rows, ["A", "B"], prior, 4.0)


def test_adapted_logits_are_the_logs_of_the_adapted_posteriors():
    logits = np.random.default_rng(7).normal(0, 3, (9, 4)).astype(np.float32)
    prior, sources = np.full(4, 0.25), ["s1"] * 6 + ["s2"] * 3
    expected = adapt_by_source(softmax(logits), sources, prior, 2.0)
    np.testing.assert_allclose(softmax(adapted_logits(logits, sources, prior, 2.0)), expected, atol=1e-6)


def test_class_prior_counts_training_targets_and_keeps_absent_classes_possible():
    prior = class_prior(np.array([0, 0, 0, 2]), 4)
    assert prior.sum() == pytest.approx(1.0)
    assert prior[0] == pytest.approx(0.75, abs=1e-5) and prior[2] == pytest.approx(0.25, abs=1e-5)
    assert prior[1] == prior[3] == pytest.approx(MIN_PRIOR, rel=0.01)
    balanced = class_prior(np.array([0, 0, 0, 2]), 4, balanced=True)  # every class weighed the same
    assert balanced[0] == balanced[2] == pytest.approx(0.5, abs=1e-5) and balanced[1] == pytest.approx(MIN_PRIOR, rel=0.01)
    with pytest.raises(ConfigError, match="no training images"):
        class_prior(np.array([], dtype=int), 3)


@pytest.mark.parametrize("value", [0, -1.0])
def test_the_strength_must_be_positive_or_null(value):
    spec = {"source": "timm", "name": "test_efficientnet", "source_prior_strength": value}
    with pytest.raises(ConfigError, match="model.source_prior_strength"):
        load(ModelConfig, spec, prefix="model")


def test_images_without_a_source_name_are_refused_by_name(tmp_path):
    good = Sample("ESP_1_RED-0001.jpg", tmp_path / "a.jpg", 0, 0, "all", {"source_image": "ESP_1_RED"})
    bad = Sample("0001_ML_00001.jpg", tmp_path / "b.jpg", 0, 0, "all", {"sol": 1})
    assert sources_of([good]) == ["ESP_1_RED"]
    with pytest.raises(ConfigError, match="image '0001_ML_00001.jpg' has no source_image in its file name"):
        sources_of([good, bad])


def test_the_bundle_carries_the_prior_and_adapts_only_when_it_has_one(tiny_hirise_bundle, tmp_path):
    from deepmars.models.bundle import ModelBundle

    plain = ModelBundle.load(tiny_hirise_bundle(tmp_path / "plain.pt"))
    logits = np.random.default_rng(8).normal(0, 2, (6, len(plain.class_names))).astype(np.float32)
    sources = ["X"] * 4 + ["Y"] * 2
    np.testing.assert_array_equal(plain.source_logits(logits, sources), logits)
    prior = np.linspace(1, 2, len(plain.class_names))
    plain.class_prior, plain.source_prior_strength = tuple(prior / prior.sum()), 3.0
    torch.save(plain.to_state(), tmp_path / "adapting.pt")
    back = ModelBundle.from_state(torch.load(tmp_path / "adapting.pt", weights_only=True), "m")
    assert back.adapts_to_sources and back.source_prior_strength == 3.0
    np.testing.assert_allclose(back.class_prior, prior / prior.sum())
    np.testing.assert_allclose(back.source_logits(logits, sources),
                               adapted_logits(logits, sources, prior / prior.sum(), 3.0))


def _rows(catalog):
    import sqlite3

    with sqlite3.connect(catalog) as conn:
        return conn.execute("SELECT path, source_image, predicted_class, confidence, top_k, abstained "
                            "FROM predictions ORDER BY path").fetchall()


def _expected(bundle, folder):
    """Each source's crops classified together, straight from the bundle (no catalog, no batches)."""
    from deepmars.inference.agreement import calibrated
    from deepmars.inference.classifier import TorchClassifier

    paths = sorted(folder.iterdir())
    pixels = np.stack([bundle.preprocess.decode(p) for p in paths])
    logits = TorchClassifier(bundle, "fp32").logits(pixels)
    sources = [p.name.rsplit("-", 1)[0] for p in paths]
    probs = calibrated(bundle.source_logits(logits, sources), bundle.temperature)
    return {str(p): (bundle.class_names[int(q.argmax())], float(q.max())) for p, q in zip(paths, probs, strict=True)}


@pytest.mark.parametrize("workers", [0, 1])
def test_predict_classifies_each_source_images_crops_together(tmp_path, tiny_bundle, workers, write_source_crops,
                                                              source_prior_bundle):
    from support import options

    from deepmars.prediction.runner import run_predict

    folder, path = write_source_crops(tmp_path / "in"), tiny_bundle(tmp_path / "m.pt", temperature=1.5)
    bundle = source_prior_bundle(path)
    summary = run_predict(options(folder, path, tmp_path / "c.sqlite", batch_size=4, num_workers=workers), bundle,
                          progress=False)
    assert summary.classified == 14 and sum(summary.per_class.values()) == 14
    rows = _rows(tmp_path / "c.sqlite")
    expected = _expected(bundle, folder)
    assert {r[0]: r[2] for r in rows} == {p: c for p, (c, _) in expected.items()}
    assert [r[3] for r in rows] == pytest.approx([expected[r[0]][1] for r in rows], abs=1e-4)
    run_predict(options(folder, path, tmp_path / "alone.sqlite", batch_size=4), source_prior_bundle(path, None), progress=False)
    alone = _rows(tmp_path / "alone.sqlite")
    assert max(abs(a[3] - r[3]) for a, r in zip(alone, rows, strict=True)) > 0.01  # the prior moved them


def test_a_predict_run_killed_between_batches_resumes_to_the_uninterrupted_catalog(tmp_path, tiny_bundle, monkeypatch,
                                                                                   write_source_crops,
                                                                                   source_prior_bundle):
    from support import options

    from deepmars.catalog.predictions import PredictionStore
    from deepmars.prediction.runner import run_predict

    folder, path = write_source_crops(tmp_path / "in"), tiny_bundle(tmp_path / "m.pt")
    run_predict(options(folder, path, tmp_path / "whole.sqlite", batch_size=4), source_prior_bundle(path), progress=False)

    write, calls = PredictionStore.write_batch, []

    def dies_on_the_third(self, predictions, errors):
        calls.append(len(predictions))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed between two transactions
        return write(self, predictions, errors)

    monkeypatch.setattr(PredictionStore, "write_batch", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_predict(options(folder, path, tmp_path / "c.sqlite", batch_size=4), source_prior_bundle(path), progress=False)
    written = _rows(tmp_path / "c.sqlite")
    assert 0 < len(written) < 14 and {r[1] for r in written} == {"ESP_000000_1000_RED"}  # whole groups only
    monkeypatch.setattr(PredictionStore, "write_batch", write)
    run_predict(options(folder, path, tmp_path / "c.sqlite", batch_size=4), source_prior_bundle(path), progress=False)
    assert _rows(tmp_path / "c.sqlite") == _rows(tmp_path / "whole.sqlite")


def test_a_run_started_before_the_key_existed_still_resumes(tmp_path, compose_cfg):
    from omegaconf import open_dict

    from deepmars.config import config_hash, diff_identity, training_identity

    today = compose_cfg(tmp_path)
    older = compose_cfg(tmp_path)
    with open_dict(older):
        del older.model["source_prior_strength"]  # a checkpoint's config from before the key
    assert config_hash(older) == config_hash(today)
    adapting = compose_cfg(tmp_path, "model.source_prior_strength=100")
    assert diff_identity(training_identity(older), training_identity(adapting)) == [
        "model.source_prior_strength: None -> 100"]


def test_shards_keep_each_source_images_crops_together(tmp_path, tiny_bundle, write_source_crops,
                                                       source_prior_bundle):
    from support import options

    from deepmars.prediction.inputs import Shard
    from deepmars.prediction.runner import run_predict

    folder, path = write_source_crops(tmp_path / "in", sizes=(4, 4, 4, 4, 4, 4)), tiny_bundle(tmp_path / "m.pt")
    run_predict(options(folder, path, tmp_path / "whole.sqlite"), source_prior_bundle(path), progress=False)
    parts = []
    for i in range(2):
        catalog = tmp_path / f"shard{i}.sqlite"
        run_predict(options(folder, path, catalog, shard=Shard(i, 2)), source_prior_bundle(path), progress=False)
        parts.append(_rows(catalog))
        assert parts[-1] and all(sum(r[1] == s for r in parts[-1]) == 4 for s in {r[1] for r in parts[-1]})
    assert sorted(parts[0] + parts[1]) == _rows(tmp_path / "whole.sqlite")  # each source whole in one shard
