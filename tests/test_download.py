"""Data root resolution and the Zenodo download, against a local HTTP server serving a tiny archive.

The archive is a real zip in the published MSL layout (a top-level folder, two generated JPEGs,
the three split files and the class file); the server speaks Range, can drop the connection
mid-file, and answers a fake Zenodo record API, so every network path runs without a network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from deepmars.data import download
from deepmars.data.root import required_paths, resolve_root
from deepmars.errors import ConfigError, DataError

CONF = Path(__file__).resolve().parents[1] / "conf" / "dataset"
SHARED = os.environ.get("DEEPMARS_DATA")
ARCHIVE_PATH = "/records/1/files/msl-images.zip"
RECORD_PATH = "/api/records/1"
IMAGES = ["0003ML0000000110100031E01_DRCL.JPG", "0565MH0000000000100001C00_DRCL.JPG"]
LABELS = {
    "train-calibrated-shuffled.txt": f"calibrated/{IMAGES[0]} 3\n",
    "val-calibrated-shuffled.txt": f"calibrated/{IMAGES[0]} 3\n",
    "test-calibrated-shuffled.txt": f"calibrated/{IMAGES[1]} 7\n",
    "msl_synset_words-indexed.txt": "".join(f"{i} class{i}\n" for i in range(25)),
}


def _jpeg(seed: int) -> bytes:
    """A small noise image: incompressible, so the archive is long enough to cut mid-file."""
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _write_layout(folder: Path) -> Path:
    """The published MSL layout, unzipped, under ``folder``."""
    (folder / "calibrated").mkdir(parents=True)
    for i, name in enumerate(IMAGES):
        (folder / "calibrated" / name).write_bytes(_jpeg(i))
    for name, text in LABELS.items():
        (folder / name).write_text(text)
    return folder


def _make_zip() -> bytes:
    """The archive as Zenodo serves it: everything under a top-level ``msl-images/`` folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, name in enumerate(IMAGES):
            zf.writestr(f"msl-images/calibrated/{name}", _jpeg(i))
        for name, text in LABELS.items():
            zf.writestr(f"msl-images/{name}", text)
        zf.writestr("msl-images/README.txt", "tiny test copy\n")
    return buf.getvalue()


ARCHIVE = _make_zip()
MD5 = "md5:" + hashlib.md5(ARCHIVE).hexdigest()


class _State:
    """What the server serves and how it misbehaves; ``requests`` logs (path, Range header)."""

    def __init__(self) -> None:
        self.files = {ARCHIVE_PATH: ARCHIVE}
        self.record = {"files": [{"key": "msl-images.zip", "checksum": MD5, "size": len(ARCHIVE)}]}
        self.drop_after: int | None = None  # bytes of body sent before hanging up
        self.drops_left = 0
        self.ignore_range = False
        self.misplaced_range = False  # answer a Range request with a 206 starting at byte 0
        self.delay_s = 0.0  # before answering for the archive, so that two clients overlap
        self.requests: list[tuple[str, str | None]] = []

    def archive_requests(self) -> list[str | None]:
        return [rng for path, rng in self.requests if path == ARCHIVE_PATH]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        if self.path == RECORD_PATH:
            return self._send(200, json.dumps(state.record).encode(), {"Content-Type": "application/json"})
        data = state.files.get(self.path)
        if data is None:
            return self._send(404, b"not found", {})
        time.sleep(state.delay_s)
        start = 0
        if rng and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        self._send_file(state, data, start, partial=bool(rng and not state.ignore_range))

    def _send_file(self, state: _State, data: bytes, start: int, *, partial: bool) -> None:
        headers = {"Accept-Ranges": "bytes"}
        if partial and state.misplaced_range:
            start = 0
        if partial:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        sent = body
        if state.drops_left > 0:
            state.drops_left -= 1
            sent = body[: state.drop_after]
        self._send(206 if partial else 200, sent, headers, length=len(body))

    def _send(self, code: int, body: bytes, headers: dict, *, length: int | None = None) -> None:
        """Announce ``length`` bytes (default: all of ``body``) and send ``body``; HTTP/1.0 then hangs up."""
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No shared data, no user cache, no retry pauses: each test sees only what it sets up."""
    monkeypatch.delenv("DEEPMARS_DATA", raising=False)
    monkeypatch.setenv("DEEPMARS_CACHE", str(tmp_path / "cache-from-env"))
    monkeypatch.setattr(download, "RETRY_PAUSE_S", 0.0)
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _msl_cfg(base: str, **download_overrides):
    """The real conf/dataset/msl.yaml, pointed at ``base`` instead of zenodo.org."""
    cfg = OmegaConf.load(CONF / "msl.yaml")
    cfg.download.url = base + ARCHIVE_PATH
    cfg.download.record_api = base + RECORD_PATH
    cfg.download.size = None
    for key, value in download_overrides.items():
        cfg.download[key] = value
    return cfg


def _base(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


# --- dataset.root and $DEEPMARS_DATA -------------------------------------------------------------


def test_root_from_config_wins_over_everything(tmp_path, monkeypatch):
    root = _write_layout(tmp_path / "mine")
    shared = _write_layout(tmp_path / "shared" / "msl")
    monkeypatch.setenv("DEEPMARS_DATA", str(shared.parent))
    cfg = _msl_cfg(_closed_port_url())
    cfg.root = str(root)
    assert resolve_root(cfg) == root.resolve()


def test_configured_root_missing_label_file_is_named(tmp_path):
    root = _write_layout(tmp_path / "mine")
    (root / "train-calibrated-shuffled.txt").unlink()
    cfg = _msl_cfg(_closed_port_url())
    cfg.root = str(root)
    with pytest.raises(DataError, match=rf"no train-calibrated-shuffled.txt in {re.escape(str(root))}") as err:
        resolve_root(cfg)
    assert "dataset.root" in str(err.value) and err.value.path == root


def test_configured_root_that_does_not_exist(tmp_path):
    cfg = _msl_cfg(_closed_port_url())
    cfg.root = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="does not exist") as err:
        resolve_root(cfg)
    assert err.value.path == tmp_path / "nowhere"


def test_missing_image_folder_is_named(tmp_path):
    cfg = OmegaConf.load(CONF / "hirise.yaml")
    root = tmp_path / "hirise"
    root.mkdir()
    (root / "labels-map-proj.txt").write_text("ESP_011623_2100_RED-0069.jpg 1\n")
    cfg.root = str(root)
    with pytest.raises(DataError, match="no map-proj in"):
        resolve_root(cfg)


def test_root_from_deepmars_data(tmp_path, monkeypatch):
    shared = _write_layout(tmp_path / "shared" / "msl")
    monkeypatch.setenv("DEEPMARS_DATA", str(shared.parent))
    assert resolve_root(_msl_cfg(_closed_port_url())) == shared.resolve()


def test_incomplete_deepmars_data_folder_is_an_error_not_a_download(tmp_path, monkeypatch, server):
    shared = _write_layout(tmp_path / "shared" / "msl")
    (shared / "msl_synset_words-indexed.txt").unlink()
    monkeypatch.setenv("DEEPMARS_DATA", str(shared.parent))
    with pytest.raises(DataError, match=r"no msl_synset_words-indexed.txt .*\$DEEPMARS_DATA/msl"):
        resolve_root(_msl_cfg(_base(server)))
    assert server.state.requests == []


def test_deepmars_data_without_the_data_set_falls_through(tmp_path, monkeypatch):
    (tmp_path / "shared" / "hirise").mkdir(parents=True)
    monkeypatch.setenv("DEEPMARS_DATA", str(tmp_path / "shared"))
    with pytest.raises(DataError) as err:
        resolve_root(_msl_cfg(_closed_port_url()), download=False, cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert "downloading is off" in text
    assert "dataset.root=" in text and "DEEPMARS_DATA=" in text and str(tmp_path / "cache" / "msl") in text
    assert "https://doi.org/10.5281/zenodo.1049137" in text


@pytest.mark.parametrize("shared", [True, False])
def test_data_set_without_a_download_url_says_where_it_looked_and_how_to_point_at_it(tmp_path, monkeypatch, shared):
    """One's own data set YAML (no download section) that is nowhere: not just "cannot be downloaded"."""
    if shared:
        monkeypatch.setenv("DEEPMARS_DATA", str(tmp_path / "shared"))
    else:
        monkeypatch.delenv("DEEPMARS_DATA", raising=False)
    cfg = {"name": "mine", "labels": {"all": "labels.txt"}, "classes": {"file": "classes.csv"}, "image_dir": "images"}
    with pytest.raises(DataError) as err:
        resolve_root(cfg, cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert text.startswith("data set 'mine' not found; looked in dataset.root (not set), ")
    where = f"({tmp_path / 'shared' / 'mine'} does not exist)" if shared else "(DEEPMARS_DATA is not set)"
    assert f"$DEEPMARS_DATA/mine {where}" in text
    assert f"the cache {tmp_path / 'cache' / 'mine'} (no copy there)" in text
    assert "dataset.root=/path/to/folder (the folder holding labels.txt, classes.csv, images)" in text
    assert not (tmp_path / "cache" / "mine").exists()


def test_hand_unzipped_copy_in_the_cache_is_used(tmp_path):
    copy = _write_layout(tmp_path / "cache" / "msl")
    assert resolve_root(_msl_cfg(_closed_port_url()), download=False, cache_dir=tmp_path / "cache") == copy


def test_bad_config_values(tmp_path):
    cfg = _msl_cfg(_closed_port_url())
    cfg.labels = {}
    with pytest.raises(ConfigError, match="dataset.labels"):
        required_paths(cfg)
    cfg = _msl_cfg(_closed_port_url(), known_hash="md5:xyz")
    with pytest.raises(ConfigError, match="dataset.download.known_hash"):
        resolve_root(cfg, cache_dir=tmp_path)
    cfg = _msl_cfg(_closed_port_url())
    cfg.name = "../msl"
    with pytest.raises(ConfigError, match="dataset.name"):
        resolve_root(cfg, cache_dir=tmp_path)


# --- download into the cache ---------------------------------------------------------------------


def test_download_and_extract_into_cache(tmp_path, server):
    cache = tmp_path / "cache"
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5, size=len(ARCHIVE)), cache_dir=cache)
    assert root == cache / "msl" / "extracted" / "msl-images"
    assert (root / "calibrated" / IMAGES[1]).read_bytes() == _jpeg(1)
    assert (root / "train-calibrated-shuffled.txt").read_text() == LABELS["train-calibrated-shuffled.txt"]
    marker = json.loads((cache / "msl" / "extracted" / download.MARKER).read_text())
    assert marker == {"archive": "msl-images.zip", "checksum": MD5, "folder": "msl-images"}
    assert sorted(p.name for p in (cache / "msl").iterdir()) == [".lock", "extracted"]
    assert server.state.requests == [(ARCHIVE_PATH, None)]  # known_hash: no record API call
    # Second call: served from the cache, no network.
    assert resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=cache) == root
    assert len(server.state.requests) == 1


def test_cache_folder_from_environment(tmp_path, server):
    root = resolve_root(_msl_cfg(_base(server)))
    assert root == tmp_path / "cache-from-env" / "msl" / "extracted" / "msl-images"


def test_checksum_from_the_record_api(tmp_path, server):
    root = resolve_root(_msl_cfg(_base(server)), cache_dir=tmp_path / "cache")
    assert (root / "msl_synset_words-indexed.txt").exists()
    assert [p for p, _ in server.state.requests] == [RECORD_PATH, ARCHIVE_PATH]
    marker = json.loads((root.parent / download.MARKER).read_text())
    assert marker["checksum"] == MD5


def _assert_nothing_complete(folder: Path) -> None:
    assert not (folder / "msl-images.zip").exists()
    assert not (folder / "msl-images.zip.part").exists()
    assert not (folder / "extracted").exists()


def test_wrong_published_checksum_deletes_the_file(tmp_path, server):
    bad = "md5:" + "0" * 32
    server.state.record["files"][0]["checksum"] = bad
    with pytest.raises(DataError, match="checksum mismatch") as err:
        resolve_root(_msl_cfg(_base(server)), cache_dir=tmp_path / "cache")
    assert bad in str(err.value) and MD5 in str(err.value) and "deleted" in str(err.value)
    _assert_nothing_complete(tmp_path / "cache" / "msl")


def test_wrong_known_hash_deletes_the_file(tmp_path, server):
    bad = "sha256:" + "f" * 64
    with pytest.raises(DataError, match="checksum mismatch") as err:
        resolve_root(_msl_cfg(_base(server), known_hash=bad), cache_dir=tmp_path / "cache")
    assert bad in str(err.value) and "sha256:" + hashlib.sha256(ARCHIVE).hexdigest() in str(err.value)
    _assert_nothing_complete(tmp_path / "cache" / "msl")


def test_wrong_size_is_refused(tmp_path, server):
    with pytest.raises(DataError, match=rf"gave {len(ARCHIVE)} bytes, expected {len(ARCHIVE) + 1}"):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5, size=len(ARCHIVE) + 1), cache_dir=tmp_path / "c")
    _assert_nothing_complete(tmp_path / "c" / "msl")


def test_config_size_disagreeing_with_zenodo(tmp_path, server):
    with pytest.raises(ConfigError, match="dataset.download.size"):
        resolve_root(_msl_cfg(_base(server), size=123), cache_dir=tmp_path / "cache")


def test_archive_missing_from_the_record(tmp_path, server):
    server.state.record["files"][0]["key"] = "other.zip"
    with pytest.raises(ConfigError, match=r"no file 'msl-images.zip'.*other.zip"):
        resolve_root(_msl_cfg(_base(server)), cache_dir=tmp_path / "cache")


def test_interrupted_download_keeps_part_and_resumes(tmp_path, server):
    cache = tmp_path / "cache"
    state = server.state
    state.drop_after, state.drops_left = 1000, 99
    with pytest.raises(DataError, match="run again to resume"):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=cache)
    part = cache / "msl" / "msl-images.zip.part"
    # Three attempts in that call, each resuming where the last stopped.
    assert part.read_bytes() == ARCHIVE[:3000]
    assert state.archive_requests() == [None, "bytes=1000-", "bytes=2000-"]
    assert not (cache / "msl" / "msl-images.zip").exists() and not (cache / "msl" / "extracted").exists()
    with pytest.raises(download.NetworkError, match=f"partial download {re.escape(str(part))} is kept"):
        resolve_root(_msl_cfg(_closed_port_url(), known_hash=MD5), cache_dir=cache)
    assert part.stat().st_size == 3000
    state.drops_left = 0
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=cache)
    assert state.archive_requests()[-1] == "bytes=3000-"
    assert (root / "calibrated" / IMAGES[0]).read_bytes() == _jpeg(0)
    assert not part.exists()


def test_a_dropped_connection_is_resumed_within_one_call(tmp_path, server):
    server.state.drop_after, server.state.drops_left = 1500, 1
    root = resolve_root(_msl_cfg(_base(server)), cache_dir=tmp_path / "cache")
    assert server.state.archive_requests() == [None, "bytes=1500-"]
    assert (root / "calibrated" / IMAGES[1]).read_bytes() == _jpeg(1)


def test_partial_is_not_a_usable_data_set(tmp_path, server):
    server.state.drop_after, server.state.drops_left = 1000, 99
    with pytest.raises(DataError):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="downloading is off"):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5), download=False, cache_dir=tmp_path / "cache")


def test_server_ignoring_range_gives_a_fresh_copy(tmp_path, server):
    folder = tmp_path / "cache" / "msl"
    folder.mkdir(parents=True)
    garbage = b"garbage that is not the start of the archive"
    (folder / "msl-images.zip.part").write_bytes(garbage)
    server.state.ignore_range = True
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert server.state.archive_requests() == [f"bytes={len(garbage)}-"]
    assert (root / "test-calibrated-shuffled.txt").exists()


def test_misplaced_range_is_not_appended(tmp_path, server):
    folder = tmp_path / "cache" / "msl"
    folder.mkdir(parents=True)
    (folder / "msl-images.zip.part").write_bytes(ARCHIVE[:500])
    server.state.misplaced_range = True
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert server.state.archive_requests() == ["bytes=500-", None]
    assert (root / "calibrated" / IMAGES[0]).read_bytes() == _jpeg(0)


def test_partial_longer_than_the_file_restarts(tmp_path, server):
    folder = tmp_path / "cache" / "msl"
    folder.mkdir(parents=True)
    (folder / "msl-images.zip.part").write_bytes(b"x" * (len(ARCHIVE) + 10))
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert server.state.archive_requests() == [f"bytes={len(ARCHIVE) + 10}-", None]
    assert (root / "val-calibrated-shuffled.txt").exists()


def test_complete_partial_is_verified_without_a_new_transfer(tmp_path, server):
    folder = tmp_path / "cache" / "msl"
    folder.mkdir(parents=True)
    (folder / "msl-images.zip.part").write_bytes(ARCHIVE)
    resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert server.state.archive_requests() == [f"bytes={len(ARCHIVE)}-"]  # answered 416, nothing sent


def test_parallel_runs_download_once(tmp_path, server):
    server.state.delay_s = 0.3
    cfg = _msl_cfg(_base(server), known_hash=MD5)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(resolve_root(cfg, cache_dir=tmp_path))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(server.state.archive_requests()) == 1


def test_offline_error_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DataError) as err:
        resolve_root(_msl_cfg(_closed_port_url()), cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert isinstance(err.value, download.NetworkError)
    assert text.startswith("cannot reach 127.0.0.1")
    assert "download msl-images.zip from https://doi.org/10.5281/zenodo.1049137" in text
    assert "dataset.root=" in text and "DEEPMARS_DATA=" in text
    assert not (tmp_path / "cache" / "msl" / "extracted").exists()


def test_http_error_is_reported(tmp_path, server):
    cfg = _msl_cfg(_base(server), known_hash=MD5)
    cfg.download.url = _base(server) + "/records/1/files/nothing.zip"
    with pytest.raises(download.NetworkError, match="HTTP 404.*download msl-images.zip from"):
        resolve_root(cfg, cache_dir=tmp_path / "cache")


def test_disk_too_small_fails_before_writing(tmp_path, server, monkeypatch):
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 100})())
    with pytest.raises(DataError, match="not enough free disk space.*DEEPMARS_CACHE"):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "msl" / "msl-images.zip").exists()


# --- extraction ----------------------------------------------------------------------------------


def test_interrupted_extraction_is_redone_without_downloading_again(tmp_path, server, monkeypatch):
    cache = tmp_path / "cache"
    real_unpack = download._unpack

    def unpack_then_die(archive: Path, dest: Path) -> None:
        real_unpack(archive, dest)
        raise KeyboardInterrupt  # as if the user hit Ctrl-C at the end of the extraction

    monkeypatch.setattr(download, "_unpack", unpack_then_die)
    with pytest.raises(KeyboardInterrupt):
        resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=cache)
    folder = cache / "msl"
    assert (folder / "msl-images.zip").read_bytes() == ARCHIVE  # verified archive kept
    assert not (folder / "extracted").exists() and not list(folder.glob(".extracting-*"))
    monkeypatch.setattr(download, "_unpack", real_unpack)
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=cache)
    assert (root / "calibrated" / IMAGES[0]).exists()
    assert len(server.state.archive_requests()) == 1


def test_leftovers_of_a_killed_extraction_are_replaced(tmp_path, server):
    folder = tmp_path / "cache" / "msl"
    (folder / ".extracting-abc123" / "msl-images").mkdir(parents=True)
    _write_layout(folder / "extracted" / "msl-images")  # complete-looking, but no marker
    (folder / "extracted" / "msl-images" / "README.txt").write_text("stale")
    root = resolve_root(_msl_cfg(_base(server), known_hash=MD5), cache_dir=tmp_path / "cache")
    assert len(server.state.archive_requests()) == 1
    assert (root / "README.txt").read_text() == "tiny test copy\n"
    assert not list(folder.glob(".extracting-*"))


def test_damaged_extraction_is_fetched_again(tmp_path, server):
    cfg = _msl_cfg(_base(server), known_hash=MD5)
    root = resolve_root(cfg, cache_dir=tmp_path / "cache")
    (root / "val-calibrated-shuffled.txt").unlink()
    assert resolve_root(cfg, cache_dir=tmp_path / "cache") == root
    assert (root / "val-calibrated-shuffled.txt").exists()
    assert len(server.state.archive_requests()) == 2


def test_archive_without_the_label_files(tmp_path, server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("msl-images/README.txt", "no labels here\n")
    server.state.files[ARCHIVE_PATH] = buf.getvalue()
    cfg = _msl_cfg(_base(server), known_hash="md5:" + hashlib.md5(buf.getvalue()).hexdigest())
    with pytest.raises(DataError, match="holds no folder with train-calibrated-shuffled.txt"):
        resolve_root(cfg, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "msl" / "extracted").exists()


def test_archive_at_top_level_is_found(tmp_path):
    tree = _write_layout(tmp_path / "tree")
    assert download.find_dataset_folder(tree, required_paths(_msl_cfg("http://x"))) == tree


# --- the real shared data ------------------------------------------------------------------------


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["msl", "hirise"])
def test_shared_data_sets_resolve(name, monkeypatch):
    if not SHARED or not (Path(SHARED) / name).is_dir():
        pytest.skip(f"DEEPMARS_DATA does not hold {name}/ (set it to the folder holding msl/ and hirise/)")
    monkeypatch.setenv("DEEPMARS_DATA", SHARED)
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert resolve_root(cfg, download=False) == (Path(SHARED) / name).resolve()
