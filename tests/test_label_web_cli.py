"""``python label.py`` serving: refused without users or a free port, and killed mid-labeling it
loses no label it acknowledged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deepmars.web.server import free_port

REPO = Path(__file__).resolve().parents[1]


def label_py(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "label.py"), *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def call(base: str, path: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(base + path, method="POST" if body is not None or path != "/api/queue" else "GET",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def wait_for_port(port: int, timeout: float = 60) -> None:
    """The address is printed just before uvicorn binds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.mark.slow
def test_killing_the_server_mid_labeling_loses_no_acknowledged_label(tmp_path, make_queue, label_events):
    cfg, tokens = make_queue(tmp_path, n=60)
    port = free_port()
    proc = label_py(f"queue={cfg['queue']}", f"users={cfg['users']}", f"port={port}", f"cache_dir={tmp_path}/c",
                    cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        while "serving" not in line:
            assert line, proc.stderr.read()
            line = proc.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        wait_for_port(port)
        assert call(base, "/api/queue", tokens["alice"])["user"] == "alice"
        acknowledged = []
        for i in range(25):
            item = call(base, "/api/next", tokens["alice"], {})["item"]
            reply = call(base, f"/api/items/{item['id']}/label", tokens["alice"], {"class_id": i % 3})
            acknowledged.append((reply["item_id"], "alice", "label", i % 3, False))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert label_events(cfg) == acknowledged  # every answer the server confirmed, nothing else


@pytest.mark.slow
def test_serving_needs_a_users_file_and_a_free_port(tmp_path, make_queue):
    cfg, _ = make_queue(tmp_path, n=1)
    no_users = label_py(f"queue={cfg['queue']}", f"users={tmp_path}/nobody.txt", cwd=tmp_path)
    _, err = no_users.communicate(timeout=120)
    assert no_users.returncode == 4 and "users file not found" in err and "adduser" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = label_py(f"queue={cfg['queue']}", f"users={cfg['users']}", f"port={port}", cwd=tmp_path)
        _, err = taken.communicate(timeout=120)
    assert taken.returncode == 4 and f"cannot listen on 127.0.0.1:{port}" in err
    bad = label_py(f"queue={cfg['queue']}", "port=70000", cwd=tmp_path)
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and "port" in err
