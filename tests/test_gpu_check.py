"""benchmarks/gpu_check.py in its CPU smoke mode: the script a GPU machine runs, run here end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT


@pytest.mark.slow
def test_gpu_check_smoke_mode_runs_every_step_and_prints_one_table(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "CPU smoke version of every step" in out and "not GPU figures" in out
    table = out[out.index("\nstep ") + 1:].splitlines()
    rows = {line.split()[0]: line for line in table[1:] if line and not line.startswith("total")}
    assert set(rows) == {"demo", "train", "predict.py", "torchrun"}
    assert all(" ok " in f" {line} " for line in rows.values()), table
    assert "img/s" in rows["train"] and "test acc" in rows["demo"]
    assert "img/s on 20 " in rows["predict.py"]
