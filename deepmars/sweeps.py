"""The MLflow parent run of a Hydra sweep, created once, before any job of the sweep starts.

Each job of ``train.py -m`` hangs its run under the sweep's parent, which it finds by the sweep
folder (``tracking.sweep_parent``). A cluster launcher (``hydra/launcher=slurm``, or submitit's
local executor) runs jobs at the same time, and two jobs that both found no parent yet would each
create one; so the launching process creates it first, in Hydra's ``on_multirun_start``, and every
job finds the same parent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from deepmars import tracking


class SweepParentRun(Callback):
    """Hydra callback (conf/config.yaml ``hydra.callbacks``)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        cfg = config.get("tracking")
        if cfg is None or not cfg.get("uri") or config.get("per_group"):
            return  # tracking off; MSLNet-inst makes its own parent run
        # The master config: its resolver cache gives ${now:...} in the sweep folder the value the
        # jobs will see (Hydra copies that cache into every job's config).
        hydra = config.hydra
        experiment_id = tracking.setup(cfg)
        tracking.sweep_parent(experiment_id, str(Path(hydra.sweep.dir).resolve()), list(hydra.overrides.task))
