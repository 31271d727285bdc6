"""Bad files never stop a batch: each kind lands in the errors table with its reason."""

from __future__ import annotations

import io
import os

import pytest
from support import bad_files, convertible_files, options

from deepmars.catalog import Catalog
from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import EXIT_SOME_FAILED, run_predict

REASONS = {
    "zero_byte.jpg": "empty file (0 bytes)",
    "truncated.jpg": "truncated",
    "corrupt_header.jpg": "not an image PIL can identify",
    "not_an_image.png": "not an image PIL can identify",
    "bomb.png": "decompression-bomb guard",
    "header_above_limit.png": "above the limit of 64,000,000 (decompression-bomb guard)",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory, write_images, write_files, tiny_bundle):
    root = tmp_path_factory.mktemp("bad")
    images = root / "batch"
    write_images(images, 6)
    write_files(images / "bad", bad_files())
    write_files(images / "odd", convertible_files())
    out = io.StringIO()
    summary = run_predict(options(images, root / "tiny.pt", root / "catalog.sqlite", num_workers=1),
                          load_bundle(str(tiny_bundle(root / "tiny.pt"))), out=out, progress=False)
    with Catalog.open(root / "catalog.sqlite", create=False) as cat:
        errors = {os.path.basename(p): (reason, sha) for p, reason, sha in
                  cat.conn.execute("SELECT path, reason, sha256 FROM errors")}
        sizes = {os.path.basename(p): (w, h) for p, w, h in cat.conn.execute("SELECT path, width, height FROM predictions")}
    return summary, errors, sizes, out.getvalue()


def test_bad_files_do_not_stop_the_run(run):
    summary, errors, sizes, text = run
    assert summary.failed == len(REASONS) and summary.classified == 6 + len(convertible_files())
    assert summary.exit_code == EXIT_SOME_FAILED == 3
    assert set(errors) == set(REASONS)
    assert f"failed {len(REASONS)}" in text and "zero_byte.jpg: empty file" in text


@pytest.mark.parametrize("name", sorted(REASONS))
def test_each_bad_kind_is_recorded_with_its_reason(run, name):
    _, errors, _, _ = run
    reason, sha = errors[name]
    assert REASONS[name] in reason
    assert sha is not None and len(sha) == 64  # readable, so hashed: a fixed file is recognised later


@pytest.mark.parametrize("name", sorted(convertible_files()))
def test_unusual_modes_are_converted_and_classified(run, name):
    _, errors, sizes, _ = run
    assert name not in errors
    assert sizes[name] == (64, 48)  # original size recorded, not the network's input size


def test_unreadable_file_has_no_hash(tmp_path, write_images, tiny_bundle):
    write_images(tmp_path / "in", 1, nested=False)
    (tmp_path / "in" / "dangling.jpg").symlink_to(tmp_path / "moved_away.jpg")
    summary = run_predict(options(tmp_path / "in", "m", tmp_path / "c.sqlite"),
                          load_bundle(str(tiny_bundle(tmp_path / "m.pt"))), out=io.StringIO(), progress=False)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        assert cat.conn.execute("SELECT sha256, reason FROM errors").fetchall() == [
            (None, "cannot read file (No such file or directory)")]
    assert summary.failed == 1 and summary.classified == 1
