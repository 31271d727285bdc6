"""Model sources: a bundle file, an MLflow run (id, runs:/), a registered model (version, alias, name)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from support import BUNDLE_CLASSES

from deepmars.errors import WeightsError
from deepmars.models.bundle import file_digest
from deepmars.models.loading import BUNDLE_ARTIFACT, load_bundle, resolve_source


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bundle):
    """A temp SQLite MLflow store with one run logging bundle/model.pt (as training does), one
    without it, and a registered model 'tiny' (version 1, alias 'prod') from the first run."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("predict-test", artifact_location=(root / "artifacts").as_uri())
    bundle_path = tiny_bundle(root / "model.pt", seed=3)
    run = client.create_run(exp)
    client.log_artifact(run.info.run_id, str(bundle_path), artifact_path="bundle")
    client.set_terminated(run.info.run_id)
    empty = client.create_run(exp)
    client.log_text(empty.info.run_id, "x", "notes/readme.txt")
    client.create_registered_model("tiny")
    mv = client.create_model_version("tiny", source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id)
    client.set_registered_model_alias("tiny", "prod", mv.version)
    return {"uri": uri, "run_id": run.info.run_id, "empty_run": empty.info.run_id, "bundle": bundle_path}


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)


@pytest.mark.slow
def test_checkpoint_path(store):
    bundle = load_bundle(str(store["bundle"]))
    assert bundle.class_names == BUNDLE_CLASSES and bundle.temperature == 1.5
    assert bundle.model_id == f"file:{store['bundle'].resolve()}#{file_digest(store['bundle'])[:12]}"
    assert not bundle.model.training


@pytest.mark.parametrize("form", ["bare", "runs", "runs_path", "runs_folder", "version", "alias", "name"])
def test_run_and_registry_forms_give_the_run_bundle(store, form):
    run_id = store["run_id"]
    source = {"bare": run_id, "runs": f"runs:/{run_id}", "runs_path": f"runs:/{run_id}/{BUNDLE_ARTIFACT}",
              "runs_folder": f"runs:/{run_id}/bundle", "version": "models:/tiny/1", "alias": "models:/tiny@prod",
              "name": "tiny"}[form]
    bundle = load_bundle(source, tracking_uri=store["uri"])
    assert bundle.model_id == f"runs:/{run_id}"  # however the run is named, one model id
    assert _same_weights(bundle, load_bundle(str(store["bundle"])))


def test_resolving_a_run_does_not_download(store):
    resolved = resolve_source("models:/tiny@prod", tracking_uri=store["uri"])
    assert (resolved.run_id, resolved.path, resolved.model_id) == (store["run_id"], None, f"runs:/{store['run_id']}")


@pytest.mark.parametrize("source, message", [
    ("0123456789abcdef0123456789abcdef", "no MLflow run '0123456789abcdef0123456789abcdef'"),
    ("runs:/0123456789abcdef0123456789abcdef", "no MLflow run"),
    ("models:/tiny/7", "registered model 'tiny' has no version 7"),
    ("models:/tiny@staging", "registered model 'tiny' has no alias 'staging'"),
    ("no_such_model", "is not a file, a run, or a registered model"),
    ("checkpoints/missing.pt", "file .*missing.pt not found"),
])
def test_unknown_sources_are_clear_errors(store, source, message):
    with pytest.raises(WeightsError, match=message):
        load_bundle(source, tracking_uri=store["uri"])


def test_run_without_bundle_artifact_names_the_convention(store):
    with pytest.raises(WeightsError, match=r"has no artifact 'bundle/model.pt' \(its artifacts: notes/\)"):
        load_bundle(store["empty_run"], tracking_uri=store["uri"])


def test_missing_store_is_reported_not_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="no MLflow store at .*mlruns/mlflow.db"):
        load_bundle("0123456789abcdef0123456789abcdef")
    assert not (tmp_path / "mlruns").exists()


def test_not_a_bundle_file(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"not torch")
    with pytest.raises(WeightsError, match="not a readable deepmars model file"):
        load_bundle(str(tmp_path / "weights.pt"))


def test_mlflow_global_state_untouched(store):
    before = mlflow.get_tracking_uri()
    load_bundle(store["run_id"], tracking_uri=store["uri"])
    assert mlflow.get_tracking_uri() == before
