"""Retraining from new labels: the feature cache, the linear head, and the labeling-loop simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MSL_CLASSES, dataset_cfg, make_msl, write_jpeg
from mlflow.tracking import MlflowClient
from support import TINY, bad_files

from deepmars.catalog.labels import LabelStore
from deepmars.data.dataset import load_dataset
from deepmars.retraining import features as features_mod
from deepmars.retraining.features import cached_features
from deepmars.retraining.heads import fit_head, head_bundle
from deepmars.retraining.plot import plot_results, summary
from deepmars.retraining.simulation import TAG_LABEL_FILES, TAG_PARENT_MODEL, SimulationSettings, simulate


def entries(n_train=24, n_val=20, n_test=12):
    """(split, sol, instrument, class id) spread over the paper's sol ranges; classes 0, 1, 3 (2 has none)."""
    out = []
    for split, n, lo, hi in (("train", n_train, 3, 181), ("val", n_val, 182, 564), ("test", n_test, 565, 1060)):
        for i in range(n):
            out.append((split, lo + (hi - lo) * i // n, ("ML", "MR", "MH")[i % 3], (0, 1, 3)[i % 3]))
    return out


@pytest.mark.slow
def test_features_are_cached_by_image_content_and_computed_once(tmp_path, monkeypatch, write_files):
    paths = {f"i{i}.jpg": write_jpeg(tmp_path / "img" / f"i{i}.jpg", shade=40 * i) for i in range(3)}
    write_files(tmp_path / "img", {"bad.jpg": bad_files()["truncated.jpg"]})
    paths["bad.jpg"] = tmp_path / "img" / "bad.jpg"
    first = cached_features(paths, TINY, tmp_path / "cache")
    assert first.names == ["i0.jpg", "i1.jpg", "i2.jpg"] and "truncated" in first.failures["bad.jpg"]
    assert first.features.shape[0] == 3 and first.features.dtype == np.float32
    with monkeypatch.context() as m:
        m.setattr(features_mod, "view_features", lambda *a, **k: pytest.fail("recomputed"))
        again = cached_features({"renamed.jpg": paths["i2.jpg"], **paths}, TINY, tmp_path / "cache")
    assert np.array_equal(again.rows(["i2.jpg", "i0.jpg"]), first.features[[2, 0]])
    assert np.array_equal(again.rows(["renamed.jpg"]), first.features[[2]])  # same content, same features
    with pytest.raises(KeyError, match="bad.jpg"):
        again.rows(["bad.jpg"])
    paths["new.jpg"] = write_jpeg(tmp_path / "img" / "new.jpg", shade=250)
    grown = cached_features(paths, TINY, tmp_path / "cache")  # only the new image is computed
    assert grown.names == ["i0.jpg", "i1.jpg", "i2.jpg", "new.jpg"]
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1  # one backbone setting, one view


@pytest.mark.slow
def test_a_head_bundle_predicts_what_the_head_computes_on_cached_features(tmp_path):
    paths = {f"i{i}.jpg": write_jpeg(tmp_path / f"i{i}.jpg", size=80, shade=30 * i) for i in range(6)}
    # The tiny network has no pretrained weights: the same random ones both times (timm's random
    # init also depends on the class count, so two classes, as the feature extractor builds).
    torch.manual_seed(0)
    feats = cached_features(paths, TINY, tmp_path / "cache")
    head = fit_head(feats.features, np.array([0, 1, 1, 0, 1, 0]), 2)
    torch.manual_seed(0)
    bundle = head_bundle(head, TINY, ["a", "b"], {"name": "x"})
    pre = bundle.preprocess
    probs = bundle.predict_proba(pre.eval_batch([pre.decode(p) for p in paths.values()]))
    assert probs == pytest.approx(head.probabilities(feats.features), abs=1e-5)


@pytest.mark.slow
def test_the_simulation_labels_exports_retrains_and_records_lineage(tmp_path):
    root = make_msl(tmp_path / "msl", entries=entries())
    settings = SimulationSettings(
        dataset_cfg=dataset_cfg("msl", root), model_cfg=TINY, work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache", tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db", sizes=(4, 10),
        random_seeds=(0, 1))
    settings.work_dir.mkdir()
    results = simulate(settings)
    # the parent, then (random x 2 seeds + 3 active orders) x 2 sizes
    assert [(r.order, r.seed, r.n_labels) for r in results] == [("none", 0, 0)] + [
        (o, s, n) for o, seeds in (("random", (0, 1)), ("least_confident", (0,)), ("margin", (0,)),
                                   ("entropy", (0,))) for s in seeds for n in (4, 10)]
    assert all(0 <= r.test_acc <= 1 for r in results)
    client = MlflowClient(settings.tracking_uri)
    parent = results[0].run_id
    by_arm: dict = {}
    for r in results[1:]:
        run = client.get_run(r.run_id)
        previous = by_arm.get((r.order, r.seed), parent)
        assert run.data.tags[TAG_PARENT_MODEL] == f"runs:/{previous}"  # each model follows the one before
        files = json.loads(run.data.tags[TAG_LABEL_FILES])
        assert files[0].endswith("train-calibrated-shuffled.txt") and files[1] == r.labels_file
        assert run.data.params["n_labels"] == str(r.n_labels) and run.data.metrics["test_acc"] == r.test_acc
        lines = Path(r.labels_file).read_text().splitlines()
        assert len(lines) == r.n_labels and all(line.startswith("calibrated/") for line in lines)
        by_arm[(r.order, r.seed)] = r.run_id
    # the exported batch is a label source the data set loads, and its labels are the true ones
    truth = {f"{s.name}": s.class_id for s in load_dataset(dataset_cfg("msl", root), root).samples}
    batch = Path(results[-1].labels_file).read_text().split("\n")[:-1]
    assert all(truth[name] == int(cid) for name, cid in (line.split() for line in batch))
    # different seeds label different images; active queues were re-ranked by the latest model
    random_batches = [Path(r.labels_file).read_text() for r in results if r.order == "random" and r.n_labels == 4]
    assert random_batches[0] != random_batches[1]
    with LabelStore.open(settings.work_dir / "queue-entropy-seed0.sqlite") as s:
        unlabeled = {it.model_id for it in s.items() if it.n_labels == 0}
    assert unlabeled == {f"runs:/{by_arm[('entropy', 0)]}"}
    table = summary(results)
    assert set(table) == {"random", "least_confident", "margin", "entropy"} and len(table["random"][4]) == 2
    assert plot_results(results, tmp_path / "plot.png", "t").stat().st_size > 1000
    assert set(MSL_CLASSES) >= {n for r in results[1:] for n in r.classes_added}
