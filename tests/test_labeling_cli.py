"""label.py's commands: queues from landmarks output, a predict catalog or a folder; status, review, exports."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HIRISE_CLASSES, make_hirise, write_jpeg
from omegaconf import OmegaConf
from support import BUNDLE_CLASSES, bad_files, options

from deepmars.catalog.labels import LabelStore
from deepmars.cli import EXIT_CANNOT_RUN, EXIT_OK, EXIT_USAGE
from deepmars.config import sample_root
from deepmars.data.dataset import load_dataset
from deepmars.labeling import cli
from deepmars.labeling.users import add_user
from deepmars.landmarks.outputs import update_labels_template
from deepmars.prediction.runner import run_predict

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(label_config):
    """``run(*args) -> exit code``: as ``python label.py *args`` (a first word that is a command is
    command=<word>)."""

    def run_label_py(*args: str) -> int:
        return cli.main(label_config(*cli.positional_command(["label.py", *args])[1:]))

    return run_label_py


def landmarks_output(folder: Path) -> Path:
    """landmarks.py's unlabeled layout: crops in map-proj/ and a labels template of -1 lines."""
    make_hirise(folder / "src", unlabeled=())
    (folder / "map-proj").mkdir(parents=True)
    for crop in sorted((folder / "src" / "map-proj").glob("*.jpg"))[:8]:
        (folder / "map-proj" / crop.name).write_bytes(crop.read_bytes())
    update_labels_template(folder, -1)
    return folder


def label_all(queue: Path, user: str, class_of) -> int:
    n = 0
    with LabelStore.open(queue) as s:
        while (it := s.next_item(user)) is not None:
            s.label(it.item_id, user, class_of(it))
            n += 1
    return n


def test_landmarks_output_becomes_a_data_set_train_py_reads(tmp_path, capsys, run):
    out = landmarks_output(tmp_path / "landmarks_out")
    queue = tmp_path / "q.sqlite"
    assert run("add", f"queue={queue}", f"images={out}", "classes=hirise") == EXIT_OK
    assert "8 images added" in capsys.readouterr().out
    assert label_all(queue, "alice", lambda it: it.item_id % 3) == 8
    export = tmp_path / "labeled"
    assert run("export", f"queue={queue}", "format=dataset", f"output={export}") == EXIT_OK
    said = capsys.readouterr().out
    assert f"python train.py dataset=hirise dataset.root={export}" in said
    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "dataset" / "hirise.yaml"))
    ds = load_dataset(cfg, export)
    assert len(ds.samples) == 8 and all(s.path.is_symlink() for s in ds.samples)
    assert {s.path.resolve().parent for s in ds.samples} == {(out / "map-proj").resolve()}
    assert sorted(ds.class_ids) == [0, 1, 2]
    # the landmarks output itself is not touched: its template still waits for labels
    assert all(line.endswith(" -1") for line in (out / "labels-map-proj.txt").read_text().splitlines())
    assert run("export", f"queue={queue}", "format=dataset", f"output={out}") == EXIT_USAGE  # not over it


def test_a_catalog_ranks_its_images_and_its_failures_are_unlabelable(tmp_path, capsys, write_images, write_files,
                                                                     tiny_bundle, run):
    images = tmp_path / "delivery"
    write_images(images, 6, nested=False)
    write_files(images, {"truncated.jpg": bad_files()["truncated.jpg"]})
    catalog = tmp_path / "catalog.sqlite"
    run_predict(options(images, tiny_bundle(tmp_path / "m.pt"), catalog, top_k=5), _bundle(tmp_path), progress=False)
    classes = tmp_path / "classes.csv"
    classes.write_text("".join(f"{i},{n}\n" for i, n in enumerate(BUNDLE_CLASSES + ["sun"])))
    queue = tmp_path / "q.sqlite"
    assert run("add", f"queue={queue}", f"images={catalog}", f"classes={classes}", "order=margin") == EXIT_OK
    assert "7 images added" in capsys.readouterr().out
    with LabelStore.open(queue) as s:
        items = s.items()
        bad = [it for it in items if it.unlabelable]
        assert [Path(it.path).name for it in bad] == ["truncated.jpg"] and "truncated" in bad[0].unlabelable
        good = [it for it in items if not it.unlabelable]
        assert all(it.suggestion in BUNDLE_CLASSES and it.margin is not None for it in good)
        first = s.next_item("alice", "margin")
        assert first.margin == min(it.margin for it in good)
    assert run("status", f"queue={queue}") == EXIT_OK
    assert "1 unlabelable" in capsys.readouterr().out


def _bundle(tmp_path):
    from deepmars.models.loading import load_bundle

    return load_bundle(str(tmp_path / "m.pt"))


def test_a_folder_with_an_undecodable_image(tmp_path, capsys, write_files, run):
    folder = tmp_path / "imgs"
    write_jpeg(folder / "a" / "one.jpg")
    write_jpeg(folder / "two.jpg")
    write_files(folder, {"corrupt_header.jpg": bad_files()["corrupt_header.jpg"]})
    queue = tmp_path / "q.sqlite"
    assert run("add", f"queue={queue}", f"images={folder}", "classes=hirise") == EXIT_OK
    assert "3 images added" in capsys.readouterr().out
    with LabelStore.open(queue) as s:
        assert sorted(it.name for it in s.items() if not it.unlabelable) == ["a/one.jpg", "two.jpg"]
    assert run("add", f"queue={queue}", f"images={folder}") == EXIT_OK  # again: nothing new, no error
    assert "0 images added, 3 already queued" in capsys.readouterr().out


def test_a_changed_class_list_is_refused_and_nothing_changes(tmp_path, capsys, run):
    folder = tmp_path / "imgs"
    write_jpeg(folder / "one.jpg")
    queue = tmp_path / "q.sqlite"
    assert run("add", f"queue={queue}", f"images={folder}", "classes=hirise") == EXIT_OK
    other = tmp_path / "other.csv"
    other.write_text("0,other\n1,crater\n2,dune\n")
    before = sqlite3.connect(queue).execute("SELECT classes FROM queue_info").fetchone()
    assert run("add", f"queue={queue}", f"classes={other}") == EXIT_CANNOT_RUN
    err = capsys.readouterr().err
    assert "the class list changed" in err and "2 dark dune" in err and "2 dune" in err
    assert sqlite3.connect(queue).execute("SELECT classes FROM queue_info").fetchone() == before
    assert run("add", f"queue={tmp_path / 'new.sqlite'}", f"images={folder}") == EXIT_USAGE  # a new queue needs classes
    assert "classes is required" in capsys.readouterr().err


@pytest.mark.slow
def test_disagreements_review_and_exports(tmp_path, capsys, run):
    folder = tmp_path / "imgs"
    for i in range(3):
        write_jpeg(folder / f"img{i}.jpg", shade=i * 50)
    queue, users = tmp_path / "q.sqlite", tmp_path / "users.txt"
    assert run("add", f"queue={queue}", f"images={folder}", "classes=hirise", "labels_per_item=2") == EXIT_OK
    label_all(queue, "alice", lambda it: 1)
    label_all(queue, "bob", lambda it: 1 if it.item_id != 2 else 2)
    assert run("disagreements", f"queue={queue}") == EXIT_OK
    out = capsys.readouterr().out
    assert "1 images whose labels differ" in out and "alice: crater, bob: dark dune" in out
    assert run("export", f"queue={queue}", f"output={tmp_path / 'l.csv'}") == EXIT_OK
    assert "2 labels" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "l.csv")))
    assert [(r["name"], r["class"], r["users"]) for r in rows] == [("img0.jpg", "crater", "alice,bob"),
                                                                  ("img2.jpg", "crater", "alice,bob")]
    add_user(users, "carol")
    assert run("review", f"queue={queue}", "item=2", "class=dark dune", "name=carol", f"users={users}") == EXIT_OK
    assert run("review", f"queue={queue}", "item=2", "class=crater", "name=mallory", f"users={users}") == EXIT_USAGE
    labels = tmp_path / "batch.txt"
    assert run("export", f"queue={queue}", "format=labels", f"output={labels}", f"image_dir={tmp_path}") == EXIT_OK
    assert labels.read_text() == "imgs/img0.jpg 1\nimgs/img1.jpg 2\nimgs/img2.jpg 1\n"
    history = tmp_path / "history.csv"
    assert run("export", f"queue={queue}", "format=history", f"output={history}") == EXIT_OK
    events = list(csv.DictReader(open(history)))
    assert len(events) == 7 and events[-1]["user"] == "carol" and events[-1]["action"] == "review"


def test_an_export_outside_image_dir_and_bad_options_are_usage_errors(tmp_path, capsys, run):
    folder = tmp_path / "imgs"
    write_jpeg(folder / "one.jpg")
    queue = tmp_path / "q.sqlite"
    run("add", f"queue={queue}", f"images={folder}", "classes=hirise")
    label_all(queue, "alice", lambda it: 0)
    assert run("export", f"queue={queue}", "format=labels", f"output={tmp_path / 'x.txt'}",
               f"image_dir={tmp_path / 'elsewhere'}") == EXIT_USAGE
    assert "not under" in capsys.readouterr().err
    assert run("export", f"queue={queue}", "format=pdf", f"output={tmp_path / 'x'}") == EXIT_USAGE
    assert "format: got 'pdf', allowed: one of csv, history" in capsys.readouterr().err
    assert run("export", f"queue={queue}") == EXIT_USAGE
    assert "output: got None, allowed: a value: `label.py export` needs it" in capsys.readouterr().err
    assert run("add", f"queue={queue}", "order=hardest") == EXIT_USAGE


def test_adduser_prints_a_token_that_the_users_file_accepts(tmp_path, capsys, run):
    users = tmp_path / "users.txt"
    assert run("adduser", "name=alice", f"users={users}") == EXIT_OK
    token = capsys.readouterr().out.strip().splitlines()[-1]
    from deepmars.labeling.users import read_users

    assert read_users(users).user_for(token) == "alice"


def test_label_studio_round_trip_through_the_cli(tmp_path, capsys, run):
    folder = tmp_path / "imgs"
    for i in range(2):
        write_jpeg(folder / f"img{i}.jpg", shade=i * 90)
    queue = tmp_path / "q.sqlite"
    run("add", f"queue={queue}", f"images={folder}", "classes=hirise")
    tasks = tmp_path / "tasks.json"
    assert run("export", f"queue={queue}", "format=labelstudio", f"output={tasks}") == EXIT_OK
    exported = json.loads(tasks.read_text())
    for n, task in enumerate(exported):
        task["id"] = 100 + n
        task["annotations"] = [{"id": 500 + n, "completed_by": 3, "was_cancelled": False,
                                "created_at": "2026-03-09T22:16:08.728353Z",
                                "result": [{"from_name": "class", "to_name": "image", "type": "choices",
                                            "value": {"choices": [HIRISE_CLASSES[1 + n]]}}]}]
    tasks.write_text(json.dumps(exported))
    assert run("import", f"queue={queue}", f"input={tasks}") == EXIT_OK
    assert "imported 2 labels" in capsys.readouterr().out
    with LabelStore.open(queue) as s:
        assert [(d.name, d.class_name, d.users) for d in s.decided()] == [
            ("img0.jpg", "crater", "labelstudio:3"), ("img1.jpg", "dark dune", "labelstudio:3")]


@pytest.mark.slow
def test_labels_given_in_the_queue_train_with_train_py(tmp_path, run):
    """The embedded HiRISE crops as an unlabeled landmarks output, labeled with their true classes."""
    sample = Path(sample_root("hirise"))
    out = tmp_path / "landmarks_out"
    shutil.copytree(sample / "map-proj", out / "map-proj")
    update_labels_template(out, -1)
    truth = dict(line.split() for line in (sample / "labels-map-proj.txt").read_text().splitlines())
    queue = tmp_path / "q.sqlite"
    assert run("add", f"queue={queue}", f"images={out}", "classes=hirise", "check_images=false") == EXIT_OK
    assert label_all(queue, "alice", lambda it: int(truth[it.name])) == 144
    export = tmp_path / "labeled"
    assert run("export", f"queue={queue}", "format=dataset", f"output={export}") == EXIT_OK
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "dataset=hirise", f"dataset.root={export}", "split=source_image",
         "model=tiny", "trainer.max_iters=2", "trainer.epochs=null", "trainer.batch_size=16", "trainer.eval_every=2",
         "trainer.checkpoint_every=2", "trainer.threads=1", "trainer.progress=log", "trainer.eval_splits=[val]",
         f"trainer.checkpoint_dir={tmp_path}/ckpt", "tracking=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "ckpt" / "model.pt").is_file()
