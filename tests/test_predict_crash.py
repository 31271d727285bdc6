"""Crash safety: SIGKILL a real predict process mid-run; the re-run gives the uninterrupted catalog."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from support import PREDICT_PY, ROOT, bad_files, options

from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import run_predict

N_IMAGES = 200


def _count(catalog) -> int:
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def _signal_after_first_batches(args: list[str], catalog, cwd, min_rows: int, sig: int = signal.SIGKILL,
                                timeout: float = 60) -> tuple[int, str]:
    """Start predict.py, signal its whole process group once ``min_rows`` rows are committed.

    Returns (committed rows after the process ended, its stderr)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(PREDICT_PY), *args], cwd=cwd, env=env, start_new_session=True,
                            # a suite started in the background (nohup, &) ignores SIGINT, and children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while _count(catalog) < min_rows and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)  # the process and its decode workers, as a terminal or OOM killer would
        stderr = proc.communicate(timeout=timeout)[1].decode()
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 130
    assert proc.returncode == expected, f"predict.py exited {proc.returncode}, not {expected}:\n{stderr}"
    return _count(catalog), stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_catalog(tmp_path, write_images, write_files, tiny_bundle,
                                                                    table_rows):
    folder = tmp_path / "in"
    paths = write_images(folder, N_IMAGES, size=(320, 240))
    for i in (3, 150):  # identical content under other names: reused or inferred, same row either way
        shutil.copyfile(paths[i], folder / f"copy_{i}.JPG")
    write_files(folder / "bad", {k: v for k, v in bad_files().items() if k in ("zero_byte.jpg", "truncated.jpg")})
    model = tiny_bundle(tmp_path / "m.pt")
    reference = run_predict(options(folder, model, tmp_path / "reference.sqlite", batch_size=4),
                            load_bundle(str(model)), out=io.StringIO(), progress=False)
    assert (reference.classified + reference.reused, reference.failed) == (N_IMAGES + 2, 2)

    catalog = tmp_path / "killed.sqlite"
    args = [f"input={folder}", f"model={model}", f"catalog={catalog}", "batch_size=4", "num_workers=1", "threads=1"]
    rows_at_kill, _ = _signal_after_first_batches(args, catalog, tmp_path, min_rows=8)
    assert 8 <= rows_at_kill < N_IMAGES + 2  # killed mid-run, with batches already committed

    rerun = run_predict(options(folder, model, catalog, batch_size=4), load_bundle(str(model)), out=io.StringIO(),
                        progress=False)
    assert rerun.skipped == rows_at_kill and rerun.exit_code == 3
    for table in ("predictions", "errors", "models"):
        assert table_rows(catalog, table) == table_rows(tmp_path / "reference.sqlite", table), table
    with sqlite3.connect(catalog) as conn:  # the interrupted run is logged as such
        assert conn.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL").fetchone()[0] == 1


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_exit_code_130(tmp_path, write_images, tiny_bundle):
    write_images(tmp_path / "in", N_IMAGES, size=(320, 240))
    model = tiny_bundle(tmp_path / "m.pt")
    catalog = tmp_path / "c.sqlite"
    args = [f"input={tmp_path / 'in'}", f"model={model}", f"catalog={catalog}", "batch_size=2", "threads=1"]
    rows, stderr = _signal_after_first_batches(args, catalog, tmp_path, min_rows=2, sig=signal.SIGINT)
    assert 2 <= rows < N_IMAGES
    assert "interrupted: completed batches are in the catalog" in stderr and "Traceback" not in stderr
