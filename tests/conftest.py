"""Shared fixtures: tiny data sets written in the published (Zenodo) layouts, and the real data.

The generators are plain functions so a test can build a variant (a bad line, a missing image,
another class file) in its own ``tmp_path``; the fixtures build the standard small sets.

- MSL v1: ``calibrated/<sol><inst>....JPG``, ``{train,val,test}-calibrated-shuffled.txt`` with
  ``calibrated/<file> <id>`` lines, ``msl_synset_words-indexed.txt`` with ``<id>\\t<name>`` lines.
- HiRISE v1: ``map-proj/<source image>-NNNN.jpg`` and ``labels-map-proj.txt`` with ``<file> <id>``
  lines; class names come from the data set config (``dataset.classes.names``).
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from support import CONF, HIRISE_CLASSES, REPO  # noqa: F401 - REPO: tests import it from here

# Fixtures by area (factories for what tests build in their own folders, built objects where shared);
# the constants and pure builders they and the tests use are in support.py.
pytest_plugins = ["fixtures.predict", "fixtures.landmarks", "fixtures.atlas", "fixtures.labeling", "fixtures.training"]

# MSL-like classes: id 2 ("sun") has no labeled image, as "sun" (22) in MSL v1.
MSL_CLASSES = ["apxs", "drill", "sun", "wheel"]
# (split, sol, instrument, class id): sols on both edges of the paper's ranges (3-181, 182-564, 565-1060).
MSL_ENTRIES = [
    ("train", 3, "ML", 0), ("train", 50, "MR", 1), ("train", 100, "ML", 3), ("train", 181, "MH", 3),
    ("val", 182, "MR", 0), ("val", 300, "MH", 1), ("val", 564, "ML", 3),
    ("test", 565, "MH", 0), ("test", 700, "ML", 3), ("test", 1060, "MR", 1),
]
MSL_UNLABELED = ["0042ML0000000000100000E01_DRCL.JPG"]  # in calibrated/, in no split file


def msl_name(sol: int, instrument: str, seq: int = 0) -> str:
    """A file name in MSL v1's form, e.g. 0003ML0000000110100031E01_DRCL.JPG."""
    return f"{sol:04d}{instrument}{seq:016d}E01_DRCL.JPG"


def compose_tool(tool: str, *overrides: str) -> DictConfig:
    """conf/<tool>/<tool>.yaml composed with ``overrides``, as that tool's entry point gets it."""
    with initialize_config_dir(config_dir=str(CONF / tool), version_base="1.3"):
        return compose(config_name=tool, overrides=list(overrides))


@pytest.fixture(scope="session")
def tool_config():
    """``tool_config(tool, *overrides)``: a tool's config (conf/<tool>/<tool>.yaml) composed with overrides."""
    return compose_tool


@lru_cache(maxsize=64)
def _jpeg_bytes(size: int, mode: str, shade: int) -> bytes:
    color = shade if mode == "L" else (shade, (shade * 7) % 256, (shade * 13) % 256)
    buf = io.BytesIO()
    Image.new(mode, (size, size), color).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_jpeg(path: Path, size: int = 8, mode: str = "RGB", shade: int = 128) -> Path:
    """A tiny solid JPEG (8x8 by default) at ``path``, folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jpeg_bytes(size, mode, shade))
    return path


def make_msl(root: Path, entries=MSL_ENTRIES, classes=MSL_CLASSES, unlabeled=MSL_UNLABELED) -> Path:
    """An MSL v1-layout data set under ``root``; entries are (split, sol, instrument, class id)."""
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i, (split, sol, inst, cid) in enumerate(entries):
        name = msl_name(sol, inst, i)
        write_jpeg(root / "calibrated" / name, mode="L" if inst == "MH" else "RGB", shade=10 * i)
        lines[split].append(f"calibrated/{name} {cid}\n")
    for name in unlabeled:
        write_jpeg(root / "calibrated" / name)
    for split, ls in lines.items():
        (root / f"{split}-calibrated-shuffled.txt").write_text("".join(ls))
    (root / "msl_synset_words-indexed.txt").write_text("".join(f"{i}\t{n}\n" for i, n in enumerate(classes)))
    return root


def hirise_entries(n_sources: int = 12, seed_classes=(0, 1, 2, 3, 4, 6)) -> list[tuple[str, int]]:
    """(file name, class id) for crops of ``n_sources`` source images of 1..6 crops each."""
    out = []
    for s in range(n_sources):
        source = f"ESP_{11000 + s:06d}_{2000 + s}_RED"
        for k in range(1 + s % 6):
            out.append((f"{source}-{k + 1:04d}.jpg", seed_classes[(s + k) % len(seed_classes)]))
    return out


def make_hirise(root: Path, entries: list[tuple[str, int]] | None = None, unlabeled=("thresh-1-0001.jpg",)) -> Path:
    """A HiRISE v1-layout data set under ``root``: map-proj/*.jpg (gray) and labels-map-proj.txt."""
    entries = hirise_entries() if entries is None else entries
    for i, (name, _) in enumerate(entries):
        write_jpeg(root / "map-proj" / name, mode="L", shade=(5 * i) % 256)
    for name in unlabeled:
        write_jpeg(root / "map-proj" / name, mode="L")
    (root / "labels-map-proj.txt").write_text("".join(f"{n} {c}\n" for n, c in entries))
    return root


def dataset_cfg(name: str, root: Path | None = None, **overrides) -> dict:
    """conf/dataset/<name>.yaml as a plain dict (msl or hirise: no defaults list), root set."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "dataset" / f"{name}.yaml"))
    if root is not None:
        cfg["root"] = str(root)
    cfg.update(overrides)
    return cfg


@pytest.fixture
def msl_root(tmp_path: Path) -> Path:
    return make_msl(tmp_path / "msl")


@pytest.fixture
def hirise_root(tmp_path: Path) -> Path:
    return make_hirise(tmp_path / "hirise")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """$DEEPMARS_DATA (holding msl/ and hirise/ as published), or skip with the reason."""
    value = os.environ.get("DEEPMARS_DATA")
    if not value:
        pytest.skip("DEEPMARS_DATA is not set: the real MSL/HiRISE data sets are needed "
                    "(CI sets it when the data sets lie beside the clone)")
    return Path(value)


# ------------------------------------------------------------------------------------------- web apps
# Headless Chromium from Debian's packages (.ci/run installs it), driven by Playwright; the
# machine's network is closed, so everything that would phone home is off.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_server():
    """``start(app) -> base URL``: any ASGI app served by uvicorn in a background thread on a free
    127.0.0.1 port, stopped after the test."""
    import threading
    import time

    import uvicorn

    from deepmars.web.server import free_port

    running = []

    def start(app) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """A headless Chromium (fresh profile) for page tests; skipped, with the reason, without chromium."""
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context):
    """A fresh browser tab; fails the test on any JavaScript error the page raises."""
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
