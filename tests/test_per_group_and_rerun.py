"""MSLNet-inst (one model per instrument, routed) and re-evaluation of a logged model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from support import ROOT

from deepmars.errors import DataError
from deepmars.evaluation.rerun import evaluate_model
from deepmars.training.per_group import train_per_group
from deepmars.training.run import train


@pytest.mark.slow
def test_per_instrument_models_are_trained_routed_and_compared(tmp_path, compose_cfg, mlflow_runs):
    train(compose_cfg(tmp_path / "single", "dataset=sample_msl", "split=sol"))
    single = mlflow_runs(tmp_path / "single")[0].info.run_id
    store = tmp_path / "single" / "mlruns"
    cfg = compose_cfg(tmp_path / "single", "dataset=sample_msl", "experiment=mslnet_inst",
                      f"trainer.checkpoint_dir={tmp_path}/inst/ckpt", f"per_group.compare_model={single}",
                      "trainer.max_iters=4")
    val_acc = train_per_group(cfg)
    all_runs = mlflow_runs(tmp_path / "single")
    parent = next(r for r in all_runs if r.data.tags.get("deepmars.kind") == "per_group")
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["instrument=MH", "instrument=ML", "instrument=MR"]
    # each child trained on its own instrument only
    for child in children:
        inst = child.info.run_name.split("=")[1]
        listed = mlflow.artifacts.download_artifacts(f"runs:/{child.info.run_id}/splits/train.txt", dst_path=str(tmp_path / child.info.run_id))
        names = Path(listed).read_text().split()[::2]
        assert names and all(Path(n).name[4:6] == inst for n in names)
    m = parent.data.metrics
    assert parent.info.status == "FINISHED"
    assert m["val_acc"] == pytest.approx(val_acc)
    assert {"test_acc", "single_model_test_acc", "test_acc_instrument_mh"} <= set(m)
    report = mlflow.artifacts.download_artifacts(f"runs:/{parent.info.run_id}/evaluation/report.md", dst_path=str(tmp_path / "r"))
    text = Path(report).read_text()
    assert "single model" in text and "sample_msl-inst" in text
    assert store.exists()


@pytest.mark.slow
def test_rerun_logs_a_linked_evaluation_run_with_the_models_temperature(tmp_path, compose_cfg, tool_config,
                                                                        mlflow_runs):
    train(compose_cfg(tmp_path))
    (source,) = mlflow_runs(tmp_path)
    cfg = tool_config("evaluate", f"model={source.info.run_id}", "dataset=sample_hirise", "split=source_image",
                           "splits=[val,test]", f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
                           f"output_dir={tmp_path}/eval")
    metrics = evaluate_model(cfg)
    assert metrics["temperature"] == pytest.approx(source.data.metrics["temperature"])
    assert metrics["test_acc"] == pytest.approx(source.data.metrics["test_acc"])
    assert metrics["val_acc"] == pytest.approx(source.data.metrics["val_acc"])
    evaluation = next(r for r in mlflow_runs(tmp_path) if r.data.tags.get("deepmars.kind") == "evaluation")
    assert evaluation.data.tags["mlflow.parentRunId"] == source.info.run_id
    assert "Data set: **sample_hirise**" in (tmp_path / "eval" / "report.md").read_text()


@pytest.mark.slow
def test_rerun_of_a_model_with_a_source_prior_adapts_as_training_reported(tmp_path, compose_cfg, tool_config,
                                                                          mlflow_runs):
    train(compose_cfg(tmp_path, "trainer.fine_tune=false", "trainer.head_init=linear_probe",
                      "trainer.probe_c_choices=[1.0]", "trainer.eval_splits=[val,test]",
                      "model.source_prior_strength=2"))
    (source,) = mlflow_runs(tmp_path)
    cfg = tool_config("evaluate", f"model={source.info.run_id}", "dataset=sample_hirise", "split=source_image",
                      "splits=[val,test]", f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
                      f"output_dir={tmp_path}/eval")
    metrics = evaluate_model(cfg)
    trained = source.data.metrics
    assert metrics["test_acc"] == pytest.approx(trained["test_acc"])
    assert metrics["val_acc"] == pytest.approx(trained["val_acc"])
    assert metrics["test_ece"] == pytest.approx(trained["test_ece"], abs=1e-4)


@pytest.mark.slow
def test_rerun_on_a_data_set_with_other_classes_lists_the_mismatch(tmp_path, compose_cfg, tool_config, mlflow_runs):
    train(compose_cfg(tmp_path))
    (source,) = mlflow_runs(tmp_path)
    cfg = tool_config("evaluate", f"model={source.info.run_id}", "dataset=sample_msl", "split=all",
                           f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"output_dir={tmp_path}/eval")
    with pytest.raises(DataError) as err:
        evaluate_model(cfg)
    assert "only in the model: ['other', 'crater'" in str(err.value)
    assert "only in the data set: ['apxs'" in str(err.value)


def evaluate_py(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args, f"hydra.run.dir={tmp_path}/h"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)


@pytest.mark.slow
def test_evaluate_cli_needs_a_model_and_names_usage_errors(tmp_path):
    done = evaluate_py(tmp_path, "dataset=sample_hirise", "split=all")
    assert done.returncode == 2
    assert "model: got None, allowed: a bundle file (model.pt), runs:/<run_id>" in done.stderr
    for args, named in [(["model=m.pt", "dataset=sample_hirse", "split=all"], "dataset/sample_hirse"),
                        (["model=m.pt", "dataset=sample_hirise", "split=all", "batch_size=0"], "batch_size: got 0"),
                        (["model=m.pt", "dataset=sample_hirise", "split=all", "no_such_key=1"], "no_such_key"),
                        (["model=m.pt", "dataset=sample_hirise", "split=all", "splits=[val"], "no viable alternative at input '[val'")]:
        done = evaluate_py(tmp_path, *args)
        assert done.returncode == 2 and named in done.stderr, (args, done.returncode, done.stderr[-500:])


@pytest.mark.slow
def test_evaluate_help_lists_groups_and_config_without_a_data_set(tmp_path):
    done = evaluate_py(tmp_path, "--help")
    assert done.returncode == 0, done.stderr[-500:]
    assert "dataset= and split= are required" in done.stdout
    assert "\nsplit: all, files, random, sol, source_image, source_image_cv\n" in done.stdout
    assert "\n  name: msl\n" in done.stdout
    done = evaluate_py(tmp_path, "--help", "dataset=sample_hirise")
    assert done.returncode == 0 and "\n  name: sample_hirise\n" in done.stdout, done.stderr[-500:]


@pytest.mark.slow
def test_evaluate_cli_still_reads_model_uri_and_says_to_use_model(tmp_path):
    done = evaluate_py(tmp_path, f"model_uri={tmp_path}/gone.pt", "dataset=sample_hirise", "split=all",
                       "tracking=none")
    assert done.returncode == 4 and "gone.pt" in done.stderr
    assert done.stderr.count("model_uri= is deprecated") == 1 and "use model=" in done.stderr


@pytest.mark.slow
def test_the_single_model_is_compared_through_its_own_preprocessing(tmp_path, monkeypatch, compose_cfg, mlflow_runs):
    # A 224 px single model was once scored on the per-instrument models' 160 px images.
    import deepmars.training.per_group as per_group

    train(compose_cfg(tmp_path / "single", "dataset=sample_msl", "split=sol", "model.img_size=48", "model.resize=56"))
    single = mlflow_runs(tmp_path / "single")[0]
    seen: list[tuple[int, int]] = []
    real = per_group.bundle_logits

    def spy(bundle, data, batch):
        seen.append((bundle.preprocess.resize, data.images.shape[1]))
        return real(bundle, data, batch)

    monkeypatch.setattr(per_group, "bundle_logits", spy)
    cfg = compose_cfg(tmp_path / "single", "dataset=sample_msl", "experiment=mslnet_inst",
                      f"trainer.checkpoint_dir={tmp_path}/inst/ckpt", f"per_group.compare_model={single.info.run_id}",
                      "trainer.max_iters=2")
    train_per_group(cfg)
    assert {model for model, _ in seen} == {56, 72}
    assert all(model == decoded for model, decoded in seen)
    parent = next(r for r in mlflow_runs(tmp_path / "single") if r.data.tags.get("deepmars.kind") == "per_group")
    assert parent.data.metrics["single_model_test_acc"] == pytest.approx(single.data.metrics["test_acc"])
