"""One training run's MLflow session: start or reopen the run, log, and always end it.

The run ends FINISHED, FAILED (exception) or KILLED (Ctrl-C, SIGTERM) whatever happens; runs of
a Hydra multirun hang under one parent run that records the sweep and its best child.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import mlflow
from omegaconf import DictConfig

from deepmars import tracking
from deepmars.config import config_hash
from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import LabeledDataset, Sample
from deepmars.splits import save_split_lists, split_table

log = logging.getLogger(__name__)


def _hydra_sweep() -> tuple[str, list[str], str] | None:
    """(sweep folder, overrides, job label) when running inside a Hydra multirun, else None.

    The label names the job by the keys the sweep varies when the sweep's config lists them
    (``hydra.sweeper.params``, e.g. ``seed=1``), else by its number (``job1``).
    """
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    overrides = list(hc.overrides.task)
    swept = list((hc.sweeper.get("params") or {}).keys())
    chosen = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in swept]
    label = " ".join(chosen) if chosen else f"job{hc.job.num}"
    return str(Path(hc.sweep.dir).resolve()), overrides, label


class RunSession:
    def __init__(self, cfg: DictConfig, experiment_id: str | None, resume, checkpoint_dir: Path):
        self.cfg, self.experiment_id, self.resume = cfg, experiment_id, resume
        self.checkpoint_dir = Path(checkpoint_dir).resolve()
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self.final_metric: float | None = None

    @property
    def active(self) -> bool:
        return self.run_id is not None

    def __enter__(self) -> RunSession:
        if self.experiment_id is None:
            return self
        sweep = _hydra_sweep()
        if self.cfg.tracking.get("parent_run_id"):
            self.parent_id = str(self.cfg.tracking.parent_run_id)
        elif sweep:
            self.parent_id = tracking.sweep_parent(self.experiment_id, *sweep[:2])
        tags = {tracking.TAG_CONFIG_HASH: config_hash(self.cfg),
                tracking.TAG_CHECKPOINT_DIR: str(self.checkpoint_dir),
                "deepmars.dataset": str(self.cfg.dataset.name), "deepmars.model": str(self.cfg.model.name),
                "mlflow.source.git.commit": tracking.git_commit() or "unknown"}
        run_id = self.resume.run_id if self.resume else None
        if sweep:
            tags[tracking.TAG_SWEEP_LABEL] = sweep[2]
        run = mlflow.start_run(run_id=run_id, experiment_id=None if run_id else self.experiment_id,
                               run_name=None if run_id else self.cfg.tracking.run_name,
                               parent_run_id=self.parent_id, tags=tags)
        self.run_id = run.info.run_id
        log.info("MLflow run %s (%s); open the UI with: %s", self.run_id, "resumed" if run_id else "new",
                 tracking.ui_command(mlflow.get_tracking_uri()))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.active:
            return False
        status = "FINISHED" if exc_type is None else "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        if exc_type is not None:
            mlflow.set_tag("deepmars.error", f"{exc_type.__name__}: {exc}"[:5000])
        mlflow.end_run(status)
        if self.parent_id and not self.cfg.tracking.get("parent_run_id"):
            tracking.record_in_parent(self.parent_id, self.run_id, "val_acc", self.final_metric)
            tracking.summarize_children(self.parent_id)
        log.info("MLflow run %s ended %s. Open the UI with: %s", self.run_id, status,
                 tracking.ui_command(mlflow.get_tracking_uri()))
        return False

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.active:
            clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
            if clean:
                mlflow.log_metrics(clean, step=step)

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        if self.active:
            mlflow.log_artifacts(str(folder), artifact_path)

    def log_start(self, ds: LabeledDataset, splits: dict[str, list[Sample]], train, val: DecodedImages) -> None:
        """Config, data set identity and the exact file lists of each split."""
        if not self.active:
            return
        tracking.log_config(self.cfg)
        failures = [f for d in (train, val) if isinstance(d, DecodedImages) for f in d.failures]
        mlflow.log_params({"data.version": ds.version, "data.labels_sha256": ds.labels_sha256,
                           "data.num_classes": len(ds.class_names),
                           **{f"data.n_{k}": len(v) for k, v in splits.items()}})
        with tempfile.TemporaryDirectory() as tmp:
            paths = save_split_lists(ds, splits, Path(tmp) / "splits")
            (Path(tmp) / "splits" / "counts.txt").write_text(split_table(ds, splits) + "\n")
            (Path(tmp) / "dataset.json").write_text(json.dumps(ds.describe(), indent=2))
            mlflow.log_artifacts(str(paths[0].parent), "splits")
            mlflow.log_artifact(str(Path(tmp) / "dataset.json"))
        if failures:
            mlflow.log_text("".join(f"{p}\t{r}\n" for p, r in failures), "unreadable_images.tsv")
        mlflow.log_metric("unreadable_images", len(failures))
