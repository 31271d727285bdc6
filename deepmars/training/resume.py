"""Finding the checkpoint to resume from, and refusing one trained under another config.

``trainer.resume`` takes a checkpoint file (or its folder), an MLflow run id, or ``auto``:
the most recent unfinished run of this experiment with the same config hash.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from deepmars import tracking
from deepmars.config import config_hash, diff_identity, training_identity
from deepmars.errors import ConfigError
from deepmars.training.checkpoint import LATEST, load_checkpoint, set_rng_state

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Resume:
    checkpoint: dict
    path: Path

    @property
    def checkpoint_dir(self) -> Path:
        return self.path.parent

    @property
    def run_id(self) -> str | None:
        return self.checkpoint.get("run_id") or None

    def restore(self, loop) -> None:
        loop.restore(self.checkpoint)
        set_rng_state(self.checkpoint["rng"])
        log.info("resumed from %s at iteration %d (best val_acc %.4f)", self.path,
                 loop.state.iteration, loop.state.best_metric)


def _from_run(run_id: str) -> Path:
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise ConfigError(f"trainer.resume: no MLflow run {run_id} in this tracking store ({exc.message})") from None
    folder = run.data.tags.get(tracking.TAG_CHECKPOINT_DIR)
    if not folder or not (Path(folder) / LATEST).is_file():
        raise ConfigError(f"trainer.resume: run {run_id} has no checkpoint on this machine "
                          f"(looked for {folder}/{LATEST})")
    return Path(folder) / LATEST


def _auto(cfg: DictConfig, experiment_id: str | None) -> Path | None:
    if experiment_id is None:
        raise ConfigError("trainer.resume=auto looks up runs in MLflow, but tracking is off; "
                          "give the checkpoint path instead (trainer.resume=<.../last.pt>)")
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{tracking.TAG_CONFIG_HASH}` = '{config_hash(cfg)}'",
        order_by=["attributes.start_time DESC"], max_results=50)
    for run in runs:
        folder = run.data.tags.get(tracking.TAG_CHECKPOINT_DIR)
        if run.info.status != "FINISHED" and folder and (Path(folder) / LATEST).is_file():
            return Path(folder) / LATEST
    return None


def locate(cfg: DictConfig, experiment_id: str | None) -> Path | None:
    value = str(cfg.trainer.resume)
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / LATEST
    if path.is_file():
        return path
    if value == "auto":
        return _auto(cfg, experiment_id)
    if RUN_ID.match(value):
        if experiment_id is None:
            raise ConfigError("trainer.resume=<run id> needs MLflow tracking (tracking.uri)")
        return _from_run(value)
    raise ConfigError(f"trainer.resume: {value!r} is not a checkpoint file, a folder holding {LATEST}, "
                      "an MLflow run id, or 'auto'")


def find_resume(cfg: DictConfig, experiment_id: str | None) -> Resume | None:
    """The checkpoint to continue from, checked against ``cfg``; None to start fresh."""
    if not cfg.trainer.resume:
        return None
    path = locate(cfg, experiment_id)
    if path is None:
        log.info("trainer.resume=auto: no unfinished run with this config; starting a new run")
        return None
    ckpt = load_checkpoint(path)
    diffs = diff_identity(ckpt.get("config", {}), training_identity(cfg))
    if diffs:
        raise ConfigError(f"cannot resume {path}: it was trained with a different config. "
                          "Differing keys (checkpoint -> now):\n  " + "\n  ".join(diffs))
    return Resume(ckpt, path)
