"""File names that are not valid UTF-8 are classified (or reported) like any other, and the batch goes on.

On POSIX a file name is bytes; Python shows the bytes that are not UTF-8 as lone surrogates
(``b"caf\\xff"`` -> ``"caf\\udcff"``), which SQLite, CSV files opened as UTF-8 and strict consoles
refuse. The catalog stores such a path by one rule (``deepmars.catalog.paths``), the same one every
look-up uses, so a re-run skips the file as it skips any other.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import options

from deepmars.catalog.paths import to_catalog_path, to_fs_path
from deepmars.landmarks.batch import find_images, run_batch
from deepmars.landmarks.config import LandmarkSettings
from deepmars.landmarks.pipeline import source_name
from deepmars.models.loading import load_bundle
from deepmars.prediction.inputs import iter_inputs
from deepmars.prediction.runner import run_predict

RAW_NAME = b"0100ML_caf\xff\xfe.JPG"  # an MSL name (sol 100, ML) with bytes that are UTF-8 in no position


def odd(folder: Path, raw_name: bytes) -> Path:
    """The path of ``folder / raw_name`` as Python shows it (undecodable bytes as surrogates)."""
    return Path(os.fsdecode(os.fsencode(folder) + b"/" + raw_name))


def sql(catalog: Path, statement: str, params=()) -> list[tuple]:
    with sqlite3.connect(catalog) as conn:
        return conn.execute(statement, params).fetchall()


# ---------------------------------------------------------------------------------------------- the rule
def test_undecodable_bytes_are_stored_as_x_escapes_and_turned_back_into_the_file_name():
    path = os.fsdecode(b"/data/caf\xff/\xc3(\xe9t\xc3\xa9.JPG")  # bad bytes, a cut sequence, valid UTF-8 (é)
    stored = to_catalog_path(path)
    assert stored == "/data/caf\\xff/\\xc3(\\xe9t\u00e9.JPG"
    assert stored.encode("utf-8")  # storable as SQLite TEXT, printable on any console
    assert to_fs_path(stored) == path and os.fsencode(to_fs_path(stored)) == b"/data/caf\xff/\xc3(\xe9t\xc3\xa9.JPG"
    for valid in ("/data/plain.JPG", "/data/\u00e9t\u00e9 \u706b\u661f.png", "C:\\data\\x.JPG", "a\\xFF", "a\\x41"):
        assert to_catalog_path(valid) == valid and to_fs_path(valid) == valid  # valid names are stored as they are
    assert to_catalog_path(Path(path)) == stored  # a Path is a path too
    # The one ambiguity: a valid name holding the literal text \xNN (NN in 80..ff) reads back as that byte.
    assert to_fs_path("/data/caf\\xff") == os.fsdecode(b"/data/caf\xff")


def test_source_names_and_crop_names_take_the_escaped_form():
    assert source_name(os.fsdecode(b"/in/ESP_\xff_RED.browse.jpg")) == "ESP_\\xff_RED"
    assert source_name("/in/ESP_011623_2100_RED.browse.jpg") == "ESP_011623_2100_RED"


# ---------------------------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_bundle) -> Path:
    return tiny_bundle(tmp_path_factory.mktemp("model") / "m.pt")


@pytest.fixture
def folder(tmp_path, write_images) -> Path:
    """Three good images, an undecodable-named copy of a fourth, and an undecodable-named empty file."""
    folder = tmp_path / "in"
    paths = write_images(folder, 4, nested=False)
    shutil.move(paths[3], odd(folder, RAW_NAME))
    odd(folder, b"empty\xff.jpg").write_bytes(b"")
    return folder


def test_predict_classifies_an_undecodable_name_and_a_rerun_skips_it(folder, model, tmp_path):
    catalog = tmp_path / "c.sqlite"
    out = io.StringIO()
    summary = run_predict(options(folder, model, catalog, batch_size=2), load_bundle(str(model)), out=out,
                          progress=False)
    assert (summary.classified, summary.failed, summary.exit_code) == (4, 1, 3)
    escaped = to_catalog_path(odd(folder, RAW_NAME))
    assert escaped == f"{folder}/0100ML_caf\\xff\\xfe.JPG"
    assert sql(catalog, "SELECT sol, instrument FROM predictions WHERE path = ?", (escaped,)) == [(100, "ML")]
    empty = f"{folder}/empty\\xff.jpg"
    assert sql(catalog, "SELECT path, reason FROM errors") == [(empty, "empty file (0 bytes)")]
    assert f"  {empty}: empty file (0 bytes)" in out.getvalue()  # shown escaped, as stored
    assert sql(catalog, "SELECT input FROM runs") == [(str(folder),)]

    rerun = run_predict(options(folder, model, catalog), load_bundle(str(model)), out=io.StringIO(), progress=False)
    assert (rerun.classified, rerun.skipped, rerun.failed) == (0, 4, 1)  # unchanged: skipped unread
    assert sql(catalog, "SELECT count(*) FROM predictions") == [(4,)]


def test_a_list_file_names_files_by_their_bytes_or_as_the_catalog_shows_them(folder, model, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"# names as find(1) writes them (raw bytes), then as the catalog and error lists show them\n"
                        + os.fsencode(odd(folder, RAW_NAME)) + b"\n"
                        + to_catalog_path(odd(folder, b"empty\xff.jpg")).encode() + b"\n"
                        + f"{folder}/0101MR0000000001E01_DRCL.JPG\n".encode())
    assert list(iter_inputs(str(listing))) == [str(odd(folder, RAW_NAME)), str(odd(folder, b"empty\xff.jpg")),
                                               f"{folder}/0101MR0000000001E01_DRCL.JPG"]
    catalog = tmp_path / "c.sqlite"
    summary = run_predict(options(listing, model, catalog), load_bundle(str(model)), out=io.StringIO(),
                          progress=False)
    assert (summary.classified, summary.failed) == (2, 1)
    assert sql(catalog, "SELECT path FROM errors") == [(f"{folder}/empty\\xff.jpg",)]


@pytest.mark.slow
def test_predict_py_exits_3_not_1_and_keeps_the_whole_batch(folder, model, tmp_path, run_predict_py):
    catalog = tmp_path / "c.sqlite"
    run = run_predict_py(f"input={folder}", f"model={model}", f"catalog={catalog}", "threads=1", "num_workers=1",
                         f"hydra.run.dir={tmp_path / 'h'}", cwd=tmp_path)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert sql(catalog, "SELECT count(*) FROM predictions") == [(4,)]
    assert f"{folder}/empty\\xff.jpg: empty file (0 bytes)" in run.stdout


# -------------------------------------------------------------------------------------------- landmarks
def _scene(path: Path) -> Path:
    from deepmars.landmarks.synthetic import disc_scene

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(disc_scene(512, 512, [(150, 128, 24, 200), (360, 380, 18, 40)])).save(path, format="PNG")
    return path


def test_landmarks_detect_writes_escaped_crop_names_and_csv_rows_and_goes_on(tmp_path):
    folder = tmp_path / "images"
    _scene(odd(folder, b"ESP_\xff_RED.browse.png"))
    odd(folder, b"bad\xfe.png").write_text("not an image")
    _scene(folder / "ESP_000002_1000_RED.png")
    out = tmp_path / "out"
    summary = run_batch(find_images(str(folder)), LandmarkSettings(), out)
    assert (summary.images, summary.failed, summary.landmarks) == (3, 1, 4)

    with open(out / "images.csv", newline="", encoding="utf-8") as f:
        images = {row["source"]: row for row in csv.DictReader(f)}
    assert images["ESP_\\xff_RED"]["path"] == f"{folder}/ESP_\\xff_RED.browse.png"
    assert images["ESP_\\xff_RED"]["status"] == "ok" and images["ESP_000002_1000_RED"]["landmarks"] == "2"
    assert images["bad\\xfe"]["status"] == "error" and f"{folder}/bad\\xfe.png" in images["bad\\xfe"]["message"]
    with open(out / "landmarks.csv", newline="", encoding="utf-8") as f:
        files = [row["file"] for row in csv.DictReader(f)]
    assert files[2:] == ["ESP_\\xff_RED-0001.jpg", "ESP_\\xff_RED-0002.jpg"]  # after ESP_000002 (0xff > '0')
    assert sorted(p.name for p in (out / "map-proj").iterdir()) == sorted(files)
    labels = (out / "labels-map-proj.txt").read_text(encoding="utf-8").splitlines()
    assert labels[2] == "ESP_\\xff_RED-0001.jpg -1"
    assert (out / "overlays" / "ESP_\\xff_RED.png").is_file()


def test_landmarks_classify_stores_the_escaped_path_and_a_rerun_skips_it_unread(tmp_path, monkeypatch, classify):

    folder = tmp_path / "images"
    image = _scene(odd(folder, b"ESP_\xff_RED.browse.png"))
    odd(folder, b"bad\xfe.png").write_text("not an image")
    catalog = tmp_path / "c.sqlite"
    summary = classify(folder, catalog)
    assert (summary.classified, summary.failed, summary.landmarks) == (1, 1, 2)
    assert sql(catalog, "SELECT path, source_image FROM landmark_images") == [
        (to_catalog_path(image), "ESP_\\xff_RED")]
    assert sql(catalog, "SELECT DISTINCT source_image, crop_file FROM landmarks") == [("ESP_\\xff_RED", None)]
    assert sql(catalog, "SELECT path FROM errors") == [(f"{folder}/bad\\xfe.png",)]

    odd(folder, b"bad\xfe.png").unlink()
    import deepmars.landmarks.classify as classify_module

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(classify_module, "hash_file", no_reading)
    rerun = classify(folder, catalog)
    assert (rerun.classified, rerun.skipped) == (0, 1)  # found by its stored path, unchanged: not read


def test_a_stored_path_opens_the_file(tmp_path):
    image = _scene(odd(tmp_path, b"ESP_\xff_RED.png"))
    with Image.open(to_fs_path(to_catalog_path(image))) as img:
        assert np.asarray(img).shape == (512, 512)
