"""Sweeps on clusters: the SLURM launcher preset, and a sweep run by submitit (its local executor,
which starts the jobs as separate processes at the same time, as SLURM would) with each job one
MLflow child run under the sweep's one parent run."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from support import CONF, ROOT


def test_the_slurm_preset_has_the_settings_a_user_edits():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.timeout_min > 0 and launcher.cpus_per_task > 0 and launcher.mem_gb > 0
    assert cfg.hydra.callbacks.sweep_parent_run._target_ == "deepmars.sweeps.SweepParentRun"


@pytest.mark.slow
def test_a_submitit_sweep_makes_one_parent_run_with_a_child_per_job(tmp_path, overrides_for):
    base = [a for a in overrides_for(tmp_path, "trainer.max_iters=3") if not a.startswith("trainer.checkpoint_dir")]
    args = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=20", *base, "trainer.checkpoint_dir=${hydra:runtime.output_dir}/ckpt",
            "optim.lr=0.01,0.02", f"hydra.sweep.dir={tmp_path}/multirun"]
    # The jobs are new Python processes that unpickle the task: they must import this checkout.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "multirun" / ".submitit").is_dir()  # the jobs went through submitit

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    all_runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [r for r in all_runs if r.data.tags.get("deepmars.kind") == "sweep"]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 2, [r.data.tags for r in all_runs]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(c.data.params["optim.lr"] for c in children) == ["0.01", "0.02"]
    assert all(c.info.status == "FINISHED" for c in children)
    best = max(c.data.metrics["best_val_acc"] for c in children)
    assert parents[0].data.metrics["best_val_acc"] == pytest.approx(best)
