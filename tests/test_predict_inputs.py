"""Input discovery: folder / glob / list file, image suffixes in any case, fixed order, shards."""

from __future__ import annotations

import os

import pytest

from deepmars.errors import ConfigError
from deepmars.prediction.inputs import Shard, count_inputs, iter_inputs


@pytest.fixture()
def tree(tmp_path):
    files = ["b.JPG", "a.jpeg", "c.png", "notes.txt", "z/d.TIF", "z/e.tiff", "z/y/f.Jpg", "m/readme.md",
             ".hidden/g.png"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_folder_is_recursive_case_insensitive_sorted_and_absolute(tree, monkeypatch):
    monkeypatch.chdir(tree)
    got = list(iter_inputs("."))
    rel = [os.path.relpath(p, tree) for p in got]
    assert set(rel) == {".hidden/g.png", "a.jpeg", "b.JPG", "c.png", "z/d.TIF", "z/e.tiff", "z/y/f.Jpg"}
    assert all(os.path.isabs(p) for p in got)
    assert got == list(iter_inputs(str(tree)))  # same keys whatever the working directory
    assert count_inputs(str(tree)) == 7


def test_folder_order_is_files_then_sorted_subfolders(tree):
    rel = [os.path.relpath(p, tree) for p in iter_inputs(str(tree))]
    assert rel == ["a.jpeg", "b.JPG", "c.png", ".hidden/g.png", "z/d.TIF", "z/e.tiff", "z/y/f.Jpg"]


def test_glob_matches_images_only_sorted(tree):
    got = [os.path.relpath(p, tree) for p in iter_inputs(str(tree / "**" / "*"))]
    assert got == sorted(got)
    assert set(got) == {"a.jpeg", "b.JPG", "c.png", "z/d.TIF", "z/e.tiff", "z/y/f.Jpg"}  # glob skips dot dirs


def test_list_file_keeps_order_resolves_relative_to_itself(tree, tmp_path_factory, monkeypatch):
    other = tmp_path_factory.mktemp("elsewhere")
    listing = tree / "z" / "batch.txt"
    listing.write_text(f"# new delivery\ne.tiff\n\n../c.png\n{tree / 'a.jpeg'}\nmissing.jpg\n")
    monkeypatch.chdir(other)
    got = list(iter_inputs(str(listing)))
    assert got == [str(tree / "z" / "e.tiff"), str(tree / "c.png"), str(tree / "a.jpeg"),
                   str(tree / "z" / "missing.jpg")]  # a listed missing file is reported later, per file


def test_bad_input_specs_name_the_key(tree):
    with pytest.raises(ConfigError, match="input: .* does not exist"):
        list(iter_inputs(str(tree / "nope")))
    with pytest.raises(ConfigError, match="single image"):
        list(iter_inputs(str(tree / "c.png")))


def test_shards_partition_the_inputs_deterministically(tree):
    everything = list(iter_inputs(str(tree)))
    parts = [list(iter_inputs(str(tree), Shard(i, 3))) for i in range(3)]
    assert sorted(p for part in parts for p in part) == sorted(everything)
    assert sum(len(p) for p in parts) == len(everything)
    assert parts == [list(iter_inputs(str(tree), Shard(i, 3))) for i in range(3)]


@pytest.mark.parametrize("text, ok", [("0/4", True), ("3/4", True), ("4/4", False), ("-1/2", False),
                                      ("1", False), ("a/b", False), ("0/0", False)])
def test_shard_parse(text, ok):
    if ok:
        shard = Shard.parse(text)
        assert f"{shard.index}/{shard.count}" == text
    else:
        with pytest.raises(ConfigError, match="shard"):
            Shard.parse(text)
