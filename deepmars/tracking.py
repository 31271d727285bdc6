"""MLflow: where runs go, what each run records, and how runs of a sweep hang together.

Default store: a SQLite file inside ``./mlruns`` with artifacts under ``./mlruns/artifacts``
(MLflow 3 refuses a plain file store without MLFLOW_ALLOW_FILE_STORE). Relative paths in the
config are made absolute, so the printed ``mlflow ui`` command works from anywhere.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import statistics
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


# What a sweep's parent run summarises over its finished children (cross-validation folds, seeds).
SWEEP_METRICS = ("test_acc", "test_acc_at_0.9_calibrated", "test_abstain_at_0.9_calibrated", "test_ece",
                 "test_ece_calibrated", "val_acc", "best_val_acc", "temperature", "test_acc_each_image_alone")
TAG_SWEEP_LABEL = "deepmars.sweep_label"


def summarize_children(parent_id: str, metrics: tuple[str, ...] = SWEEP_METRICS) -> dict[str, float]:
    """Per-child and mean +- sd (sample sd, n - 1) of ``metrics`` over the parent's FINISHED children.

    Logged to the parent as ``<label>.<metric>`` for each child (label: ``fold<i>`` for a
    cross-validation fold, else the child's ``deepmars.sweep_label`` tag or its run name) and
    ``<metric>_mean``, ``<metric>_sd``, ``<metric>_n``; the same figures go to the artifacts
    ``sweep_summary.csv`` and ``sweep_summary.md``. Failed or unfinished children are counted in
    ``children_failed`` / ``children_finished`` and left out of the means, so a mean always says
    over how many runs it was taken.
    """
    client = MlflowClient()
    parent = client.get_run(parent_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000)
    done = sorted((c for c in children if c.info.status == "FINISHED"), key=_child_label)
    summary: dict[str, float] = {"children_finished": float(len(done)),
                                 "children_failed": float(sum(c.info.status == "FAILED" for c in children))}
    rows = []
    for c in done:
        label = _child_label(c)
        row = {"label": label, "run_id": c.info.run_id}
        for m in metrics:
            if m in c.data.metrics:
                row[m] = c.data.metrics[m]
                summary[f"{label}.{m}"] = c.data.metrics[m]
        rows.append(row)
    for m in metrics:
        values = [r[m] for r in rows if m in r and math.isfinite(r[m])]
        if values:
            summary[f"{m}_mean"] = statistics.fmean(values)
            summary[f"{m}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[f"{m}_n"] = float(len(values))
    client.log_batch(parent_id, metrics=[mlflow.entities.Metric(k, v, _now_ms(), 0) for k, v in summary.items()])
    client.log_text(parent_id, _summary_csv(rows, metrics), "sweep_summary.csv")
    client.log_text(parent_id, _summary_markdown(rows, metrics, summary), "sweep_summary.md")
    return summary


def _child_label(run) -> str:
    params = run.data.params
    if params.get("split.name") == "source_image_cv" and "split.fold" in params:
        return f"fold{params['split.fold']}"
    label = run.data.tags.get(TAG_SWEEP_LABEL) or run.data.tags.get("mlflow.runName") or run.info.run_id
    return re.sub(r"[^A-Za-z0-9_.\- /:]", "_", label)  # MLflow metric names allow only these


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _summary_csv(rows: list[dict], metrics: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["label", "run_id", *metrics], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _summary_markdown(rows: list[dict], metrics: tuple[str, ...], summary: dict[str, float]) -> str:
    shown = [m for m in metrics if f"{m}_n" in summary]
    lines = ["| run | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for r in rows:
        lines.append(f"| {r['label']} | " + " | ".join(f"{r[m]:.4f}" if m in r else "" for m in shown) + " |")
    lines.append("| mean +- sd (n) | " + " | ".join(
        f"{summary[m + '_mean']:.4f} +- {summary[m + '_sd']:.4f} ({int(summary[m + '_n'])})" for m in shown) + " |")
    return "\n".join(lines) + "\n"
