"""MLflow: where runs go, what each run records, and how runs of a sweep hang together.

Default store: a SQLite file inside ``./mlruns`` with artifacts under ``./mlruns/artifacts``
(MLflow 3 refuses a plain file store without MLFLOW_ALLOW_FILE_STORE). Relative paths in the
config are made absolute, so the printed ``mlflow ui`` command works from anywhere.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from deepmars.config import flatten

log = logging.getLogger(__name__)

MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value
MAX_PARAM_KEY = 250
TAG_SWEEP = "deepmars.sweep_dir"
TAG_CONFIG_HASH = "deepmars.config_hash"
TAG_CHECKPOINT_DIR = "deepmars.checkpoint_dir"


def resolve_uri(uri: str) -> str:
    """``sqlite:///mlruns/mlflow.db`` (relative) -> absolute, creating the folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri[len("sqlite:///"):]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if "://" not in uri:
        path = Path(uri).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path.as_uri()
    return uri


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}"


def setup(tracking: Mapping) -> str | None:
    """Point MLflow at the configured store and experiment; returns the experiment id."""
    if not tracking.get("uri"):
        return None
    uri = resolve_uri(str(tracking["uri"]))
    mlflow.set_tracking_uri(uri)
    name = str(tracking["experiment"])
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = tracking.get("artifact_location")
        artifact_uri = Path(location).resolve().as_uri() if location and "://" not in location else location
        return mlflow.create_experiment(name, artifact_location=artifact_uri)
    return exp.experiment_id


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _param_value(v: Any) -> str:
    s = str(v)
    return s if len(s) <= MAX_PARAM_VALUE else s[:MAX_PARAM_VALUE - 15] + "...[truncated]"


def log_config(cfg: DictConfig) -> None:
    """The resolved config as a YAML artifact and as flattened params within MLflow's limits."""
    mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    params = {k[:MAX_PARAM_KEY]: _param_value(v) for k, v in flatten(cfg).items()}
    existing = mlflow.active_run().data.params if mlflow.active_run() else {}
    params = {k: v for k, v in params.items() if k not in existing}
    items = list(params.items())
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i:i + 100]))


def sweep_parent(experiment_id: str, sweep_dir: str, overrides: list[str]) -> str:
    """The parent run of a Hydra multirun, found by its sweep folder or created once."""
    client = MlflowClient()
    found = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_SWEEP}` = '{sweep_dir}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=f"sweep {Path(sweep_dir).name}",
                            tags={TAG_SWEEP: sweep_dir, "deepmars.kind": "sweep"})
    client.log_text(run.info.run_id, "\n".join(overrides) + "\n", "sweep_overrides.txt")
    return run.info.run_id


def record_in_parent(parent_id: str, child_id: str, metric: str, value: float | None) -> None:
    """Keep the parent's best child metric up to date after each job, failed jobs included."""
    client = MlflowClient()
    parent = client.get_run(parent_id)
    best = parent.data.metrics.get(f"best_{metric}")
    if value is not None and (best is None or value > best):
        client.log_metric(parent_id, f"best_{metric}", value)
        client.set_tag(parent_id, "deepmars.best_child", child_id)
    client.set_terminated(parent_id, "FINISHED")
