"""atlas.py: a catalog that cannot be served is a message and exit 4, a bad key exit 2; upgrade;
and the real entry point serves and prints its address."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deepmars.catalog.schema import LANDMARK_SCHEMA, SCHEMA
from deepmars.web.atlas import cli
from deepmars.web.server import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(atlas_config):
    """``run(capsys, **overrides) -> (exit code, output)``: atlas.py's main with conf/atlas and overrides."""

    def run_atlas_py(capsys, **overrides) -> tuple[int, str]:
        code = cli.main(atlas_config(**overrides))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run_atlas_py


def _v2_catalog(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for statement in filter(str.strip, (SCHEMA + ";" + LANDMARK_SCHEMA).split(";")):
            conn.execute(statement)
        conn.execute("PRAGMA user_version=2")
    conn.close()


def test_missing_foreign_and_newer_catalogs_exit_4_with_the_reason(tmp_path, capsys, run):
    code, out = run(capsys, catalog=str(tmp_path / "none.sqlite"))
    assert code == 4 and "no such catalog" in out and "Traceback" not in out
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    code, out = run(capsys, catalog=str(foreign))
    assert code == 4 and "not a deepmars catalog" in out
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite at all" * 100)
    code, out = run(capsys, catalog=str(garbage))
    assert code == 4 and str(garbage) in out and "Traceback" not in out
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("PRAGMA user_version=99")
    conn.close()
    code, out = run(capsys, catalog=str(newer))
    assert code == 4 and "newer deepmars" in out


def test_an_older_catalog_is_refused_with_the_upgrade_command_which_then_works(tmp_path, capsys, run):
    old = tmp_path / "old.sqlite"
    _v2_catalog(old)
    before = old.read_bytes()
    code, out = run(capsys, catalog=str(old))
    assert code == 4 and f"python atlas.py upgrade catalog={old}" in out
    assert old.read_bytes() == before  # read-only: not even migrated
    code, out = run(capsys, catalog=str(old), command="upgrade")
    assert code == 0 and "schema 4" in out
    from deepmars.web.database import check_catalog

    check_catalog(old, 1.0, "")  # now servable


def test_a_locked_catalog_exits_4(tmp_path, capsys, make_atlas_catalog, run):
    catalog = make_atlas_catalog(tmp_path)
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # a writer that keeps other connections out entirely
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, out = run(capsys, catalog=str(catalog), lock_timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 4 and "locked" in out and "Traceback" not in out


def test_bad_keys_exit_2_naming_the_key(tmp_path, capsys, make_atlas_catalog, run):
    catalog = make_atlas_catalog(tmp_path)
    for key, value, said in [("port", 0, "port"), ("page_size", "many", "page_size"), ("command", "drop", "command"),
                             ("image_roots", [str(tmp_path / "nope")], "image_roots"), ("demo", "maybe", "demo"),
                             ("prot", 8001, "prot: unknown key")]:
        code, out = run(capsys, catalog=str(catalog), **{key: value})
        assert code == 2 and said in out, (key, out)


def test_a_port_in_use_exits_4(tmp_path, capsys, make_atlas_catalog, run):
    catalog = make_atlas_catalog(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out = run(capsys, catalog=str(catalog), port=taken.getsockname()[1])
    assert code == 4 and "cannot listen on 127.0.0.1" in out


@pytest.mark.slow
def test_atlas_py_serves_on_127_0_0_1_and_prints_the_address(tmp_path, make_atlas_catalog):
    catalog = make_atlas_catalog(tmp_path)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, str(ROOT / "atlas.py"), f"catalog={catalog}", f"port={port}",
                               f"cache_dir={tmp_path / 'cache'}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/catalog", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"no answer: {server.stderr.read() if server.poll() is not None else 'still running'}")
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_demo_builds_a_catalog_of_the_sample_once_and_serves_it(tmp_path, capsys, monkeypatch, tiny_hirise_bundle,
                                                                atlas_config, run):

    import shutil

    from deepmars.config import sample_root
    from deepmars.web.atlas import demo
    from deepmars.web.atlas.demo import build_demo
    from deepmars.web.atlas.options import atlas_options

    monkeypatch.delenv("DEEPMARS_DATA", raising=False)
    sample = tmp_path / "sample"  # six of the sample's crops: the same code path, a fraction of the time
    (sample / "map-proj").mkdir(parents=True)
    for crop in sorted((Path(sample_root("hirise")) / "map-proj").glob("*.jpg"))[:6]:
        shutil.copy(crop, sample / "map-proj")
    monkeypatch.setattr(demo, "sample_root", lambda name: str(sample))
    model = tiny_hirise_bundle(tmp_path / "demo.pt")
    catalog = tmp_path / "demo" / "catalog.sqlite"
    opts = atlas_options(atlas_config(demo=True, demo_catalog=str(catalog), demo_model=str(model)))
    assert build_demo(opts) == catalog
    with sqlite3.connect(catalog) as conn:
        assert conn.execute("SELECT count(*) FROM predictions").fetchone()[0] == 6
        assert conn.execute("SELECT count(*) FROM landmark_images").fetchone()[0] == 6
        assert conn.execute("SELECT count(*) FROM landmarks").fetchone()[0] >= 6
    conn.close()
    before = catalog.stat().st_mtime_ns
    build_demo(opts)  # built once
    assert catalog.stat().st_mtime_ns == before
    code, out = run(capsys, demo=True, demo_catalog=str(tmp_path / "other.sqlite"), tracking_uri="sqlite:///"
                    + str(tmp_path / "no-store.db"))
    assert code == 4 and "python train.py" in out
