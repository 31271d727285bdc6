"""Training end to end on the embedded sample with timm's tiny test network: what users see.

A run is composed from the real configs (conf/), trains a few iterations on CPU and is checked
through MLflow: status, metrics, artifacts, the logged model, resume and failures.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from support import ROOT

import deepmars.config  # noqa: F401 - registers the sample resolver
from deepmars.errors import ConfigError
from deepmars.models.bundle import ModelBundle
from deepmars.training.checkpoint import LATEST, load_checkpoint
from deepmars.training.run import train


@pytest.mark.slow
def test_run_logs_metrics_artifacts_and_a_loadable_bundle(tmp_path, compose_cfg, mlflow_runs):
    val_acc = train(compose_cfg(tmp_path, "tracking.log_model=true"))
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    assert m["best_val_acc"] == pytest.approx(val_acc)
    for key in ("train_acc", "val_acc", "test_acc", "test_ece", "temperature", "baseline_majority_test_acc"):
        assert key in m, key
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [h.step for h in history] == list(range(6))
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) >= 2
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "splits", "bundle", "evaluation", "dataset.json"} <= names
    split_files = {a.path for a in client.list_artifacts(run.info.run_id, "splits")}
    assert {"splits/train.txt", "splits/val.txt", "splits/test.txt"} <= split_files
    assert run.data.params["dataset.name"] == "sample_hirise"
    assert len(run.data.params["data.labels_sha256"]) == 64
    assert run.data.tags["mlflow.source.git.commit"]
    report = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/evaluation/report.md",
                                                 dst_path=str(tmp_path / "dl"))
    assert "Data set: **sample_hirise**, 6 classes" in Path(report).read_text()  # its name, not "unnamed"
    bundle_path = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/bundle/model.pt", dst_path=str(tmp_path / "dl"))
    bundle = ModelBundle.load(bundle_path)
    assert bundle.model_cfg["source"] == "timm" and type(bundle.model_cfg["source"]) is str
    assert bundle.class_names == ["other", "crater", "dark dune", "slope streak", "bright dune", "edge"]
    assert bundle.temperature == pytest.approx(m["temperature"])
    net = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    x = torch.zeros(1, 3, 64, 64)
    torch.testing.assert_close(net.eval()(x), bundle.model.eval()(x))


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_differs(tmp_path, compose_cfg, mlflow_runs, final_weights):
    a = train(compose_cfg(tmp_path / "a"))
    wa = final_weights(tmp_path / "a")
    train(compose_cfg(tmp_path / "b"))
    wb = final_weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    train(compose_cfg(tmp_path / "c", "seed=1"))
    wc = final_weights(tmp_path / "c")
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a == pytest.approx(mlflow_runs(tmp_path / "b")[0].data.metrics["best_val_acc"])


def _train_cli(overrides_for, tmp_path: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, str(ROOT / "train.py"), *overrides_for(tmp_path, *extra),
            f"hydra.run.dir={tmp_path}/hydra"]
    return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights_in_the_same_mlflow_run(tmp_path, compose_cfg, mlflow_runs,
                                                                        overrides_for, final_weights):
    long = ("trainer.max_iters=14", "trainer.checkpoint_every=2")
    train(compose_cfg(tmp_path / "whole", *long))
    reference = final_weights(tmp_path / "whole")

    killed = tmp_path / "killed"
    killed.mkdir()
    proc = _train_cli(overrides_for, killed, *long)
    deadline = time.time() + 600  # generous: a loaded CI machine starts python + torch slowly
    ckpt = killed / "ckpt" / LATEST
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and load_checkpoint(ckpt)["state"]["iteration"] >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    assert ckpt.exists(), f"the training subprocess wrote no checkpoint; its stderr:\n{stderr[-3000:]}"
    stopped_at = load_checkpoint(killed / "ckpt" / LATEST)["state"]["iteration"]
    assert 4 <= stopped_at < 14
    (run,) = mlflow_runs(killed)
    assert run.info.status == "RUNNING"  # SIGKILL: nobody could end it

    train(compose_cfg(killed, "trainer.resume=auto", *long))
    resumed = final_weights(killed)
    assert resumed.keys() == reference.keys()
    for k in reference:
        assert torch.equal(resumed[k], reference[k]), k
    (run,) = mlflow_runs(killed)  # the same run, continued
    assert run.info.status == "FINISHED"
    steps = {h.step for h in MlflowClient().get_metric_history(run.info.run_id, "train_loss")}
    assert steps == set(range(14))


@pytest.mark.slow
def test_resume_with_a_different_config_names_the_keys(tmp_path, compose_cfg):
    train(compose_cfg(tmp_path))
    ckpt = tmp_path / "ckpt" / LATEST
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(tmp_path, f"trainer.resume={ckpt}", "optim.lr=0.5", "trainer.batch_size=8"))
    assert "optim.lr: 0.01 -> 0.5" in str(err.value)
    assert "trainer.batch_size: 16 -> 8" in str(err.value)


@pytest.mark.slow
def test_resume_by_run_id(tmp_path, compose_cfg, mlflow_runs, final_weights):
    train(compose_cfg(tmp_path, "trainer.max_iters=4"))
    (run,) = mlflow_runs(tmp_path)
    before = final_weights(tmp_path)
    train(compose_cfg(tmp_path, "trainer.max_iters=4", f"trainer.resume={run.info.run_id}"))
    assert len(mlflow_runs(tmp_path)) == 1  # continued, not a new run
    after = final_weights(tmp_path)
    assert all(torch.equal(before[k], after[k]) for k in before)  # already at max_iters: nothing more


def test_unknown_resume_value_is_a_clear_error(tmp_path, compose_cfg):
    with pytest.raises(ConfigError, match="not a checkpoint file"):
        train(compose_cfg(tmp_path, "trainer.resume=nowhere.pt"))


@pytest.mark.slow
def test_run_ends_failed_on_error_and_killed_on_interrupt(tmp_path, monkeypatch, compose_cfg, mlflow_runs):
    from deepmars.training import loop as loop_mod

    def boom(self, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(loop_mod.Loop, "step", boom)
    with pytest.raises(RuntimeError):
        train(compose_cfg(tmp_path / "f"))
    (run,) = mlflow_runs(tmp_path / "f")
    assert run.info.status == "FAILED"
    assert "boom" in run.data.tags["deepmars.error"]

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_mod.Loop, "step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(compose_cfg(tmp_path / "k"))
    (run,) = mlflow_runs(tmp_path / "k")
    assert run.info.status == "KILLED"


def _sample_copy_with_corrupt_train_image(compose_cfg, tmp_path: Path) -> tuple[Path, str]:
    from deepmars.config import sample_root
    from deepmars.data.dataset import load_dataset
    from deepmars.splits import make_splits

    root = tmp_path / "data"
    shutil.copytree(sample_root("hirise"), root)
    cfg = compose_cfg(tmp_path, f"dataset.root={root}")
    victim = make_splits(load_dataset(cfg.dataset, root), cfg.split)["train"][0]
    victim.path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return root, victim.name


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["memory", "none"])
def test_corrupt_image_is_skipped_counted_and_training_goes_on(tmp_path, cache, compose_cfg, mlflow_runs):
    root, victim = _sample_copy_with_corrupt_train_image(compose_cfg, tmp_path)
    n_train = len((root / "labels-map-proj.txt").read_text().splitlines())  # upper bound, refined below
    train(compose_cfg(tmp_path, f"dataset.root={root}", f"trainer.cache={cache}", "trainer.max_iters=8",
                      "trainer.batch_size=64"))
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    client = MlflowClient()
    if cache == "memory":  # found when the cache is built, before the first iteration
        assert m["unreadable_images"] == 1
        listed = client.download_artifacts(run.info.run_id, "unreadable_images.tsv", str(tmp_path))
        assert victim in Path(listed).read_text()
    else:  # met in a batch: logged, skipped, counted once per image
        assert m["unreadable_images_in_training"] == 1
    splits = {a.path for a in client.list_artifacts(run.info.run_id, "splits")}
    assert "splits/train.txt" in splits
    assert m["train_n"] + m["val_n"] + m["test_n"] == n_train - 1


@pytest.mark.slow
def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch, compose_cfg, mlflow_runs):
    import errno

    from deepmars.training import checkpoint as ck

    real_save = torch.save
    calls = {"n": 0}

    def flaky_save(obj, f, *a, **k):
        calls["n"] += 1
        if "state" in obj and obj["state"]["iteration"] == 4:
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ck.torch, "save", flaky_save)
    train(compose_cfg(tmp_path))
    ckpt = load_checkpoint(tmp_path / "ckpt" / LATEST)
    assert ckpt["state"]["iteration"] == 6  # training went on and later checkpoints were written
    assert ckpt["state"]["failed_checkpoints"] == 1
    assert not list((tmp_path / "ckpt").glob(".*.tmp"))
    (run,) = mlflow_runs(tmp_path)
    assert run.data.metrics["failed_checkpoints"] == 1


@pytest.mark.slow
def test_lr_mult_pattern_matching_nothing_stops_before_training(tmp_path, compose_cfg):
    with pytest.raises(ConfigError, match="no_such_layer"):
        train(compose_cfg(tmp_path, "+optim.lr_mult.no_such_layer=2"))


@pytest.mark.slow
def test_empty_split_is_an_error_before_training(tmp_path, compose_cfg, mlflow_runs):
    from deepmars.errors import DataError

    with pytest.raises(DataError, match="no images"):
        train(compose_cfg(tmp_path, "dataset=sample_msl", "split=sol", "split.sol_range.test=[5000,6000]"))
    assert mlflow_runs(tmp_path) == []  # training never started: no MLflow run to mistake for a real one
    assert not (tmp_path / "ckpt").exists()  # nothing trained


def test_bad_label_file_leaves_no_mlflow_run(tmp_path, compose_cfg, mlflow_runs):
    from deepmars.config import sample_root
    from deepmars.errors import DataError

    root = tmp_path / "data"
    shutil.copytree(sample_root("hirise"), root)
    labels = root / "labels-map-proj.txt"
    labels.write_text(labels.read_text().replace(" 1\n", " x\n", 1))
    with pytest.raises(DataError, match=r"labels-map-proj.txt:\d+: class id 'x' is not an integer"):
        train(compose_cfg(tmp_path, f"dataset.root={root}"))
    assert mlflow_runs(tmp_path) == []


@pytest.mark.slow
def test_multirun_parent_holds_best_child_and_a_failing_job_does_not_lose_the_others(tmp_path, overrides_for,
                                                                                     mlflow_runs):
    base = [a for a in overrides_for(tmp_path) if not a.startswith("trainer.checkpoint_dir")]
    args = [sys.executable, str(ROOT / "train.py"), "-m", *base, "trainer.max_iters=3",
            "trainer.checkpoint_dir=${hydra:runtime.output_dir}/ckpt",
            "dataset.image_dir=map-proj,no_such_folder,map-proj", "optim.lr=0.01",
            f"hydra.sweep.dir={tmp_path}/multirun"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0  # Hydra reports the failed job at the end of the sweep
    all_runs = mlflow_runs(tmp_path)
    parents = [r for r in all_runs if r.data.tags.get("deepmars.kind") == "sweep"]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId")]
    # The job whose data could not be read failed before training: Hydra records it (its log
    # and the sweep's exit status), MLflow holds no run for it; the jobs after it still ran.
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED"]
    assert "no_such_folder" in (tmp_path / "multirun" / "1" / "train.log").read_text()
    assert "no_such_folder" in done.stderr
    best = max(c.data.metrics["best_val_acc"] for c in children if c.info.status == "FINISHED")
    assert parents[0].data.metrics["best_val_acc"] == pytest.approx(best)


def test_wise_ft_bundle_is_the_interpolation_chosen_on_val(tmp_path, compose_cfg, mlflow_runs):
    from deepmars.training.checkpoint import BEST
    from deepmars.training.wise_ft import START, interpolate

    train(compose_cfg(tmp_path, "trainer.wise_ft=true", "trainer.wise_ft_alphas=[0.0,0.5,1.0]"))
    (run,) = mlflow_runs(tmp_path)
    m = run.data.metrics
    alpha = m["wise_ft_alpha"]
    assert alpha in (0.0, 0.5, 1.0)
    assert m["wise_ft_val_acc"] == max(m[f"wise_ft_val_acc_alpha_{a:g}"] for a in (0.0, 0.5, 1.0))
    assert m["val_acc"] == pytest.approx(m["wise_ft_val_acc"])  # the report evaluates the chosen weights
    expected = interpolate(load_checkpoint(tmp_path / "ckpt" / START)["model"],
                           load_checkpoint(tmp_path / "ckpt" / BEST)["model"], alpha)
    bundle = ModelBundle.load(tmp_path / "ckpt" / "model.pt")
    assert all(torch.equal(bundle.model.state_dict()[k], expected[k]) for k in expected)


@pytest.mark.slow
def test_cross_validation_sweep_parent_reports_each_fold_and_mean_sd(tmp_path, overrides_for, mlflow_runs):
    base = [a for a in overrides_for(tmp_path) if not a.startswith("trainer.checkpoint_dir")]
    args = [sys.executable, str(ROOT / "train.py"), "-m", *base, "trainer.max_iters=2", "hparams_search=folds",
            "split.folds=3", "split.fold=range(3)", "trainer.eval_splits=[val,test]",
            "trainer.checkpoint_dir=${hydra:runtime.output_dir}/ckpt", f"hydra.sweep.dir={tmp_path}/multirun"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    all_runs = mlflow_runs(tmp_path)
    (parent,) = [r for r in all_runs if r.data.tags.get("deepmars.kind") == "sweep"]
    children = sorted((r for r in all_runs if r.data.tags.get("mlflow.parentRunId")),
                      key=lambda r: int(r.data.params["split.fold"]))
    assert [c.data.params["split.fold"] for c in children] == ["0", "1", "2"]
    pm = parent.data.metrics
    for metric in ("test_acc", "test_ece", "test_acc_at_0.9_calibrated", "test_abstain_at_0.9_calibrated"):
        values = [c.data.metrics[metric] for c in children if metric in c.data.metrics]
        if not values:
            continue
        assert pm[f"{metric}_n"] == len(values)
        assert pm[f"{metric}_mean"] == pytest.approx(np.mean(values))
        assert pm[f"{metric}_sd"] == pytest.approx(np.std(values, ddof=1) if len(values) > 1 else 0.0)
    assert pm["test_acc_n"] == 3 and pm["children_finished"] == 3
    assert [pm[f"fold{i}.test_acc"] for i in range(3)] == [c.data.metrics["test_acc"] for c in children]
    summary = MlflowClient().download_artifacts(parent.info.run_id, "sweep_summary.md", str(tmp_path))
    text = Path(summary).read_text()
    assert "fold0" in text and "fold2" in text and "mean +- sd (n)" in text
    # every source image of the sample is tested in exactly one fold
    tested = []
    for c in children:
        split_file = MlflowClient().download_artifacts(c.info.run_id, "splits/test.txt", str(tmp_path / c.info.run_id))
        tested += [line.split()[0].rsplit("-", 1)[0] for line in Path(split_file).read_text().splitlines()]
    assert len(set(tested)) == 64


def test_frozen_recipe_fits_only_the_head_and_its_bundle_predicts_what_the_report_says(tmp_path, monkeypatch,
                                                                                       compose_cfg, mlflow_runs):
    from deepmars.config import ModelConfig
    from deepmars.data.cache import decode_samples
    from deepmars.models.factory import build_model
    from deepmars.schema import load
    from deepmars.training import features
    from deepmars.training.run import load_and_split

    frozen = ("trainer.fine_tune=false", "trainer.head_init=linear_probe", "trainer.probe_c_choices=[0.1,1.0]",
              "model.tta=dihedral", f"trainer.feature_cache={tmp_path}/features", "trainer.eval_splits=[val,test]")
    best = train(compose_cfg(tmp_path / "a", *frozen))
    (run,) = mlflow_runs(tmp_path / "a")
    m = run.data.metrics
    assert run.info.status == "FINISHED" and m["probe_c"] in (0.1, 1.0)
    assert best == pytest.approx(m["val_acc"]) == pytest.approx(max(m["probe_val_acc_c_0.1"], m["probe_val_acc_c_1"]))
    assert "train_loss" not in m  # no iteration ran
    bundle = ModelBundle.load(tmp_path / "a" / "ckpt" / "model.pt")
    assert len(bundle.tta) == 8
    torch.manual_seed(0)
    pretrained, _ = build_model(load(ModelConfig, bundle.model_cfg, prefix="model"), len(bundle.class_names))
    head = "classifier."
    own = bundle.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in pretrained.state_dict().items() if not k.startswith(head))
    cfg = compose_cfg(tmp_path / "a", *frozen)
    _, splits = load_and_split(cfg)
    test = decode_samples(splits["test"], bundle.preprocess, progress=False)
    probs = bundle.predict_proba(bundle.preprocess.eval_batch(test.images))
    assert float((probs.argmax(1) == test.targets).mean()) == pytest.approx(m["test_acc"])

    # a second run (e.g. the next fold) reads every feature from the cache: nothing is computed
    monkeypatch.setattr(features, "view_features", lambda *a, **k: pytest.fail("features recomputed"))
    assert train(compose_cfg(tmp_path / "b", *frozen)) == pytest.approx(best)


@pytest.mark.parametrize("balance", ["none", "loss"])
def test_source_prior_reports_and_saves_what_its_bundle_gives_per_source_image(tmp_path, compose_cfg, mlflow_runs,
                                                                               balance):
    from deepmars.data.cache import decode_samples
    from deepmars.evaluation.apply import bundle_logits
    from deepmars.evaluation.calibration import softmax
    from deepmars.evaluation.sources import sources_of
    from deepmars.models.source_prior import class_prior
    from deepmars.training.run import load_and_split

    frozen = ("trainer.fine_tune=false", "trainer.head_init=linear_probe", "trainer.probe_c_choices=[1.0]",
              "trainer.calibration=val", "trainer.eval_splits=[val,test]", "model.source_prior_strength=2",
              f"trainer.class_balance={balance}")
    train(compose_cfg(tmp_path, *frozen))
    (run,) = mlflow_runs(tmp_path)
    m = run.data.metrics
    bundle = ModelBundle.load(tmp_path / "ckpt" / "model.pt")
    _, splits = load_and_split(compose_cfg(tmp_path, *frozen))
    train_targets = np.array([s.target for s in splits["train"]])
    assert bundle.source_prior_strength == 2.0
    # the mix the head learned: the training frequencies, or equal shares when every class weighed the same
    np.testing.assert_allclose(bundle.class_prior,
                               class_prior(train_targets, len(bundle.class_names), balanced=balance == "loss"))
    test = decode_samples(splits["test"], bundle.preprocess, progress=False)
    logits = bundle_logits(bundle, test)
    alone = softmax(logits, bundle.temperature).argmax(1)
    adapted = softmax(bundle.source_logits(logits, sources_of(test.samples)), bundle.temperature).argmax(1)
    assert float((adapted == test.targets).mean()) == pytest.approx(m["test_acc"])
    # the temperature was chosen on the adapted val logits, so "each image alone" is measured without it
    assert float((softmax(logits).argmax(1) == test.targets).mean()) == pytest.approx(m["test_acc_each_image_alone"])
    assert (alone != adapted).any()  # strength 2 moves some of the sample's landmarks


def test_source_prior_on_images_without_a_source_fails_before_training(tmp_path, compose_cfg, msl_root):
    cfg = compose_cfg(tmp_path, "dataset=msl", f"dataset.root={msl_root}", "split=random",
                      "model.source_prior_strength=10")
    with pytest.raises(ConfigError, match="model.source_prior_strength: image .* has no source_image"):
        train(cfg)
    assert not (tmp_path / "ckpt").exists()


def test_frozen_recipe_needs_the_linear_probe(tmp_path, compose_cfg):
    with pytest.raises(ConfigError, match="trainer.fine_tune: got False, allowed: true, or false with trainer.head_init=linear_probe"):
        train(compose_cfg(tmp_path, "trainer.fine_tune=false"))


@pytest.mark.slow
def test_frozen_recipe_refit_saves_the_head_fitted_on_train_and_val_with_the_c_and_temperature_chosen_before(
        tmp_path, compose_cfg, mlflow_runs):
    from deepmars.data.cache import decode_samples
    from deepmars.models.factory import head_prefix
    from deepmars.training.features import features_for
    from deepmars.training.head_init import fit_probe
    from deepmars.training.run import load_and_split

    frozen = ("trainer.fine_tune=false", "trainer.head_init=linear_probe", "trainer.probe_c_choices=[0.01,1.0]",
              "model.tta=hflip", f"trainer.feature_cache={tmp_path}/features", "trainer.eval_splits=[val,test]")
    train(compose_cfg(tmp_path / "a", *frozen))
    train(compose_cfg(tmp_path / "b", *frozen, "trainer.refit_on_train_val=true"))
    (plain,), (refit,) = mlflow_runs(tmp_path / "a"), mlflow_runs(tmp_path / "b")
    p, r = plain.data.metrics, refit.data.metrics
    for key in ("probe_c", "val_acc", "temperature", "probe_val_acc_c_0.01", "probe_val_acc_c_1"):
        assert r[key] == pytest.approx(p[key]), key  # every choice made as without the refit
    assert "refit_train_val_acc" in r and "refit_train_val_acc" not in p

    cfg = compose_cfg(tmp_path / "b", *frozen, "trainer.refit_on_train_val=true")
    bundle = ModelBundle.load(tmp_path / "b" / "ckpt" / "model.pt")
    head = bundle.model.get_submodule(head_prefix(bundle.model, cfg.model.head))
    _, splits = load_and_split(cfg)
    feats, targets = [], []
    for name in ("train", "val"):
        data = decode_samples(splits[name], bundle.preprocess, progress=False)
        feats.append(features_for(bundle.model, head, data.images, [s.path for s in data.samples], bundle.preprocess,
                                  bundle.tta, model_cfg=cfg.model, cache_dir=f"{tmp_path}/features").mean(1))
        targets.append(data.targets)
    weight, bias, _ = fit_probe(np.concatenate(feats), np.concatenate(targets), len(bundle.class_names), r["probe_c"])
    np.testing.assert_allclose(head.weight.detach().numpy(), weight, atol=1e-6)
    np.testing.assert_allclose(head.bias.detach().numpy(), bias, atol=1e-6)
    assert bundle.temperature == pytest.approx(r["temperature"])
    test = decode_samples(splits["test"], bundle.preprocess, progress=False)
    probs = bundle.predict_proba(bundle.preprocess.eval_batch(test.images))
    assert float((probs.argmax(1) == test.targets).mean()) == pytest.approx(r["test_acc"])


def test_refit_on_train_val_is_refused_for_fine_tuning(tmp_path, compose_cfg):
    message = "trainer.refit_on_train_val: got True, allowed: false when trainer.fine_tune is true"
    with pytest.raises(ConfigError, match=message):
        train(compose_cfg(tmp_path, "trainer.refit_on_train_val=true"))
