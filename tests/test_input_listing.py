"""Listing inputs: globs do not descend into symlinked folders, and a folder that cannot be read is reported.

Folder inputs never follow folder symlinks; a glob's ``**`` does not either, so a link back into the
tree (``self -> .``, ``up -> ..``) neither repeats files nor hangs the run. Tests run as root, whom
permission bits do not stop, so an unreadable folder is simulated by ``os.scandir`` refusing it.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
from pathlib import Path

import pytest
from support import DISC_SCENES, A, B, options

from deepmars.errors import ConfigError
from deepmars.landmarks.batch import find_images
from deepmars.models.loading import load_bundle
from deepmars.prediction.inputs import count_inputs, iter_inputs
from deepmars.prediction.runner import run_predict


class ListingHangs(Exception):
    """Not an OSError (TimeoutError is one), which a listing would swallow as an unreadable folder."""


@pytest.fixture(autouse=True)
def ends_in_time():
    """A listing that loops fails the test instead of hanging the suite."""

    def timeout(signum, frame):
        raise ListingHangs("the listing did not end within 30 s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def linked(tmp_path) -> Path:
    """root/{a.JPG, sub/b.JPG, sub/deeper/c.JPG} with folder links back into the tree and a file link."""
    root = tmp_path / "root"
    for name in ("a.JPG", "sub/b.JPG", "sub/deeper/c.JPG", "other/d.JPG"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "self").symlink_to(".")
    (root / "sub" / "up").symlink_to("..")
    (root / "sub" / "deeper" / "upup").symlink_to("../..")
    (root / "elsewhere").symlink_to(root / "other", target_is_directory=True)
    (root / "link.JPG").symlink_to(root / "a.JPG")  # a file symlink is an ordinary input
    return root


REAL = ["a.JPG", "link.JPG", "other/d.JPG", "sub/b.JPG", "sub/deeper/c.JPG"]


def test_a_glob_lists_each_file_once_through_folder_links_and_ends(linked):
    got = [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/**/*.JPG")]
    assert got == REAL
    assert count_inputs(f"{linked}/**/*.JPG") == len(REAL)


def test_a_glob_follows_a_folder_link_it_names_and_one_level_wildcards(linked):
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/elsewhere/*.JPG")] == ["elsewhere/d.JPG"]
    # A one-level wildcard is not recursive, so it cannot loop: it enters a folder link as glob does.
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/*/*.JPG")] == [
        "elsewhere/d.JPG", "other/d.JPG", "self/a.JPG", "self/link.JPG", "sub/b.JPG"]


def test_a_glob_keeps_globs_other_rules(linked, monkeypatch):
    (linked / ".hidden").mkdir()
    (linked / ".hidden" / "e.JPG").write_bytes(b"x")
    (linked / "sub" / ".f.JPG").write_bytes(b"x")
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/**/*.JPG")] == REAL  # no dot names
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/sub/.*.JPG")] == ["sub/.f.JPG"]
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/sub/[bc].JPG")] == ["sub/b.JPG"]
    assert [os.path.relpath(p, linked) for p in iter_inputs(f"{linked}/**/*.JPG".replace("**/", "**/**/"))] == REAL
    monkeypatch.chdir(linked)
    assert list(iter_inputs("sub/**/?.JPG")) == [str(linked / "sub/b.JPG"), str(linked / "sub/deeper/c.JPG")]
    assert list(iter_inputs(f"{linked}/nothing/**/*.JPG")) == []


def test_landmarks_globs_do_not_descend_into_folder_links(linked):
    got = [os.path.relpath(p, linked) for p in find_images(f"{linked}/**/*.JPG")]
    assert got == REAL


# ------------------------------------------------------------------------------------ unreadable folders
def refuse(monkeypatch, *folders: Path) -> None:
    """os.scandir and os.listdir raise PermissionError for ``folders``, as for a user without the x/r bits."""
    refused = {os.fspath(f) for f in folders}
    real_scandir, real_listdir = os.scandir, os.listdir

    def check(path):
        if isinstance(path, int):  # a descriptor (shutil.rmtree walks by them): an open folder, never refused
            return
        if os.path.normpath(os.fspath(path if path is not None else ".")) in refused:
            raise PermissionError(13, "Permission denied", os.fspath(path))

    def scandir(path="."):
        check(path)
        return real_scandir(path)

    def listdir(path="."):
        check(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)


def test_predict_reports_an_unreadable_folder_counts_it_and_exits_3(tmp_path, monkeypatch, capsys, write_images,
                                                                    tiny_bundle):
    folder = tmp_path / "in"
    write_images(folder, 6)  # every third in sol0/ or sol3/
    model = tiny_bundle(tmp_path / "m.pt")
    refuse(monkeypatch, folder / "sol0")
    out = io.StringIO()
    catalog = tmp_path / "c.sqlite"
    summary = run_predict(options(folder, model, catalog), load_bundle(str(model)), out=out, progress=False)
    assert (summary.classified, summary.failed) == (5, 0)
    assert summary.unreadable.found == {str(folder / "sol0"): "Permission denied"}
    assert summary.exit_code == 3  # not all of the input was classified
    with sqlite3.connect(catalog) as conn:  # the run records it; no errors row (a folder is not an image)
        assert conn.execute("SELECT exit_code, failed FROM runs").fetchall() == [(3, 0)]
        assert conn.execute("SELECT count(*) FROM errors").fetchone() == (0,)
    warned = capsys.readouterr().err
    assert warned.count(f"warning: cannot read folder {folder / 'sol0'} (Permission denied)") == 1  # once
    assert f"folders that could not be read (1):\n  {folder / 'sol0'}: Permission denied" in out.getvalue()


def test_predict_globs_report_an_unreadable_folder_too(tmp_path, monkeypatch, capsys, write_images):
    folder = tmp_path / "in"
    write_images(folder, 6)
    refuse(monkeypatch, folder / "sol3")
    assert len(list(iter_inputs(f"{folder}/**/*.JPG"))) == 5
    assert f"cannot read folder {folder / 'sol3'}" in capsys.readouterr().err


def test_landmarks_find_images_reports_unreadable_folders(tmp_path, monkeypatch, capsys):
    from deepmars.inference.listing import UnreadableFolders

    for name in ("a/x.png", "b/y.png", "c/z.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    refuse(monkeypatch, tmp_path / "b", tmp_path / "c")
    unreadable = UnreadableFolders()
    got = find_images([str(tmp_path / "a"), str(tmp_path / "b"), f"{tmp_path}/c/*.png"], unreadable)
    assert [os.path.relpath(p, tmp_path) for p in got] == ["a/x.png"]
    assert list(unreadable.found) == [str(tmp_path / "b"), str(tmp_path / "c")]
    assert f"cannot read folder {tmp_path / 'c'}" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"matched no images .*could not be read: .*/b \(Permission denied\)"):
        find_images(str(tmp_path / "b"), UnreadableFolders())


def test_landmarks_detect_and_classify_report_an_unreadable_folder(tmp_path, monkeypatch, write_scene,
                                                                   landmark_config, known_bundle, sql):
    from deepmars.landmarks import cli
    from deepmars.landmarks.batch import run_from_config

    write_scene(tmp_path / "a", A)
    write_scene(tmp_path / "b", B)
    refuse(monkeypatch, tmp_path / "b")
    listed = f"input=[{tmp_path / 'a'},{tmp_path / 'b'}]"
    summary = run_from_config(landmark_config(listed, f"output_dir={tmp_path / 'out'}"))
    assert (summary.images, summary.landmarks, summary.unreadable_folders) == (1, len(DISC_SCENES[A]), 1)
    assert "1 folders could not be read" in str(summary)
    rows = (tmp_path / "out" / "images.csv").read_text().splitlines()
    assert rows[1].startswith(f",{tmp_path / 'b'},error,0,") and "cannot read folder (Permission denied)" in rows[1]
    assert cli.main(landmark_config(listed, f"output_dir={tmp_path / 'out2'}")) == 3  # as for a failed image

    monkeypatch.setattr("deepmars.models.loading.load_bundle", lambda *a, **k: known_bundle())
    catalog = tmp_path / "c.sqlite"
    assert cli.main(landmark_config("command=classify", listed, "model=unused", f"catalog={catalog}")) == 3
    assert sql(catalog, "SELECT source_image FROM landmark_images") == [(A,)]
    assert sql(catalog, "SELECT exit_code, failed FROM runs") == [(3, 0)]  # recorded as the process exits
