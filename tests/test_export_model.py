"""export_model.py: export, int8 calibration, measured table; exports of MLflow runs live in the run."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import mlflow
import pytest
from support import ROOT, options

import deepmars.config  # noqa: F401 - the ${deepmars_sample:...} resolver
from deepmars.cli import EXIT_USAGE, required_keys, run_cli
from deepmars.config import ExportModelConfig
from deepmars.errors import ConfigError
from deepmars.export.command import run_export
from deepmars.inference import runtimes
from deepmars.models.exported import MANIFEST, RUN_ARTIFACT
from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import run_predict
from deepmars.schema import validate

needs_openvino = pytest.mark.skipif(not (runtimes.installed("openvino") and runtimes.installed("onnxruntime")),
                                    reason="openvino and onnxruntime are needed")


def test_missing_keys_are_named_at_once(capsys):
    required = ("model", "dataset", "split")
    for argv, named in [([], "model=, dataset= and split= are required"), (["dataset=msl", "split=sol"],
                        "model= is required"), (["+model=m.pt", "dataset=msl"], "split= is required")]:
        with pytest.raises(SystemExit) as done:
            required_keys(["export_model.py", *argv], required, "python export_model.py ...")
        assert done.value.code == EXIT_USAGE and f"error: {named}; usage:" in capsys.readouterr().err
    required_keys(["export_model.py", "model=m.pt", "dataset=msl", "split=sol"], required, "")
    required_keys(["export_model.py", "--multirun", "model=a,b"], required, "")  # left to Hydra


@pytest.mark.slow
def test_help_and_missing_keys_from_the_command_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "export_model.py"), *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=600)

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr[-500:]
    assert "model=, dataset= and split= are required" in helped.stdout
    assert "\nsplit: all, files, random, sol, source_image, source_image_cv\n" in helped.stdout
    assert "\ncheck_split: test\n" in helped.stdout and "\n  name: msl\n" in helped.stdout
    missing = run("dataset=sample_msl", "split=files")
    assert missing.returncode == EXIT_USAGE and "error: model= is required; usage:" in missing.stderr
    assert "python export_model.py model=runs:/<run_id> dataset=msl split=sol" in missing.stderr
    assert not list(tmp_path.iterdir())  # no log file, no Hydra output folder


@pytest.mark.slow
@needs_openvino
def test_export_measures_every_runtime_and_int8_is_then_usable(tmp_path, capsys, sample_msl_bundle, export_config,
                                                               write_images):
    model = sample_msl_bundle(tmp_path / "model.pt")
    cfg = export_config(f"model={model}", "dataset=sample_msl", "split=files", "int8=true",
                        "calibration_images=8", "threads=1")
    table = run_export(cfg)
    printed = capsys.readouterr().out
    manifest = json.loads((tmp_path / "model.export" / MANIFEST).read_text())
    assert set(manifest["files"]) == {"onnx", "openvino", "openvino-int8"}
    assert manifest["files"]["onnx"]["opset"] == 18
    assert manifest["files"]["openvino-int8"]["calibration"]["images"] == 8
    int8 = manifest["checks"]["openvino/int8"]
    assert int8["images"] == 44 and 0 <= int8["accuracy"] <= 1 and int8["on"] == "sample_msl test split, 44 images"
    for key in ("onnxruntime/fp32", "openvino/fp32"):
        assert manifest["checks"][key]["max_abs_probability"] <= 1e-4
    assert [(m.runtime, m.precision) for m in table][:3] == [("torch", "fp32"), ("onnxruntime", "fp32"),
                                                            ("openvino", "fp32")]
    assert "| openvino | int8 |" in printed and (tmp_path / "model.export" / "report.md").is_file()

    write_images(tmp_path / "images", 6)
    out = io.StringIO()
    summary = run_predict(options(tmp_path / "images", model, tmp_path / "c.sqlite", runtime="auto",
                                  precision="int8"), load_bundle(str(model)), out=out, progress=False)
    sha = manifest["files"]["openvino-int8"]["sha256"]
    assert summary.model_id.endswith(f"+openvino-int8-{sha[:8]}") and summary.classified == 6
    assert "measured when exported: top-1 agreement" in out.getvalue()


def test_export_needs_a_model_and_names_a_bad_split(capsys, export_config):
    with pytest.raises(SystemExit) as done:
        run_cli(run_export, export_config("dataset=sample_msl", "split=files"))
    assert done.value.code == EXIT_USAGE and "model: got None, allowed: a bundle file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="check_split: got 'holdout', allowed: one of train, val, test"):
        validate(ExportModelConfig, export_config("model=m.pt", "dataset=sample_msl", "split=files",
                                                  "check_split=holdout"))


@pytest.mark.slow
@needs_openvino
def test_the_export_of_a_run_model_is_logged_to_that_run_and_reused(tmp_path, monkeypatch, sharp_bundle, write_images):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    (tmp_path / "mlruns").mkdir()
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "mlruns" / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifact(str(sharp_bundle(tmp_path / "bundle" / "model.pt")), "bundle")
    write_images(tmp_path / "images", 8)

    def predict(catalog: str) -> str:
        out = io.StringIO()
        opts = options(tmp_path / "images", f"runs:/{run.info.run_id}", tmp_path / catalog, runtime="openvino",
                       tracking_uri=uri)
        run_predict(opts, load_bundle(opts.model, uri), out=out, progress=False)
        return out.getvalue()

    assert "saved to runs:/" in predict("a.sqlite")
    names = [f.path for f in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id, RUN_ARTIFACT)]
    assert f"{RUN_ARTIFACT}/{MANIFEST}" in names and f"{RUN_ARTIFACT}/model.onnx" in names
    import deepmars.inference.opening as opening

    monkeypatch.setattr(opening, "build_export", lambda *a, **k: pytest.fail("exported again"))
    assert "saved to" not in predict("b.sqlite")
