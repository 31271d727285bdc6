"""Signals: decode workers never outlive predict.py, and SIGTERM stops a run as Ctrl-C does (exit 143).

The real predict.py runs in a subprocess (its own session, SIGINT restored as in test_predict_crash).
Its worker processes are found through /proc (their parent is predict.py) before it is signalled.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import PREDICT_PY, ROOT, options

from deepmars.cli import EXIT_TERMINATED
from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import run_predict

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes through /proc")
N_IMAGES = 200


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...), None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has exited, only its parent must reap it


def wait_until_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def committed(catalog: Path) -> int:
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def start_predict(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(PREDICT_PY), *args], cwd=cwd, env=env, start_new_session=True,
                            # a suite started in the background (nohup, &) ignores SIGINT, and children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def signal_mid_run(proc: subprocess.Popen, catalog: Path, sig: int, group: bool, min_rows: int) -> list[int]:
    """Once ``min_rows`` are committed and the workers are up, send ``sig``; returns the workers' pids."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and committed(catalog) < min_rows and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = children(proc.pid)  # now, not earlier: start-up runs short-lived helper processes
    assert proc.poll() is None and workers, "predict.py ended before it could be signalled mid-run"
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    return workers


def end(proc: subprocess.Popen, workers: list[int]) -> str:
    """Kill what is left of a run (a surviving worker holds predict.py's stderr open); its stderr."""
    for pid in [proc.pid, *workers]:
        if running(pid):
            os.kill(pid, signal.SIGKILL)
    return proc.communicate(timeout=30)[1].decode()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, write_images, tiny_bundle):
    """200 images and a tiny model, with the catalog of an uninterrupted run."""
    root = tmp_path_factory.mktemp("batch")
    write_images(root / "in", N_IMAGES, size=(320, 240))
    model = tiny_bundle(root / "m.pt")
    run_predict(options(root / "in", model, root / "reference.sqlite", batch_size=4), load_bundle(str(model)),
                out=io.StringIO(), progress=False)
    return root


def args(batch: Path, catalog: Path) -> list[str]:
    return [f"input={batch / 'in'}", f"model={batch / 'm.pt'}", f"catalog={catalog}", "batch_size=4",
            "num_workers=1", "threads=1", f"hydra.run.dir={catalog.parent / 'hydra'}"]


@pytest.mark.slow
def test_kill_9_of_predict_alone_ends_its_decode_worker_and_a_rerun_completes_the_catalog(batch, tmp_path, table_rows):
    catalog = tmp_path / "killed.sqlite"
    proc = start_predict(args(batch, catalog), tmp_path)
    workers = []
    try:
        workers = signal_mid_run(proc, catalog, signal.SIGKILL, group=False, min_rows=8)
        proc.wait(timeout=30)
        survivors = wait_until_gone(workers)
        assert not survivors, f"decode workers {survivors} outlived predict.py (kill -9)"
    finally:
        end(proc, workers)

    rerun = run_predict(options(batch / "in", batch / "m.pt", catalog, batch_size=4), load_bundle(str(batch / "m.pt")),
                        out=io.StringIO(), progress=False)
    assert rerun.skipped >= 8 and rerun.exit_code == 0
    for table in ("predictions", "errors", "models"):
        assert table_rows(catalog, table) == table_rows(batch / "reference.sqlite", table), table


@pytest.mark.slow
@pytest.mark.parametrize("group", [False, True], ids=["kill-pid", "kill-process-group"])
def test_sigterm_stops_predict_as_ctrl_c_does_with_exit_143(batch, tmp_path, group):
    catalog = tmp_path / "terminated.sqlite"
    proc = start_predict(args(batch, catalog), tmp_path)
    workers = []
    try:
        workers = signal_mid_run(proc, catalog, signal.SIGTERM, group=group, min_rows=4)
        proc.wait(timeout=60)
        survivors = wait_until_gone(workers, timeout=5)
    finally:
        stderr = end(proc, workers)
    assert proc.returncode == EXIT_TERMINATED == 143, f"predict.py exited {proc.returncode}:\n{stderr}"
    assert "terminated: completed batches are in the catalog" in stderr and "Traceback" not in stderr
    assert not survivors, f"decode workers {survivors} outlived predict.py (SIGTERM)"
    assert 4 <= committed(catalog) < N_IMAGES
    with sqlite3.connect(catalog) as conn:  # the run is logged as interrupted
        assert conn.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL").fetchone()[0] == 1


_ORPHAN = """
import os, sys, time
from deepmars.prediction import worker_exit
if sys.argv[1] == "poll":
    worker_exit.request_kill_with_parent = lambda: False  # as where prctl does not exist
parent = os.getpid()
child = os.fork()
if child == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # let go of the test's pipes: it reads them to their end
    os.dup2(devnull, 2)
    worker_exit.exit_with_parent(parent, poll_s=0.05)
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(0.2)
os._exit(0)  # the parent dies without stopping its child
"""


@pytest.mark.parametrize("how", ["prctl", "poll"])
def test_a_worker_exits_when_its_parent_dies(how):
    run = subprocess.run([sys.executable, "-c", _ORPHAN, how], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    child = int(run.stdout.split()[0])
    try:
        assert not wait_until_gone([child], timeout=5), f"the child ({how}) outlived its parent"
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
