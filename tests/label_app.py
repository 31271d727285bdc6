"""A label queue over generated images, with users, and the labeling app label.py would serve."""

from __future__ import annotations

from pathlib import Path

from conftest import write_jpeg
from deepmars.catalog.labels import LabelStore
from deepmars.labeling.cli import open_queue
from deepmars.labeling.options import label_options
from deepmars.labeling.users import add_user, read_users
from deepmars.web.label.app import create_label_app

HOSTILE = '<img src=x onerror="alert(1)">'
CLASS_NAMES = ["other", "crater", "dark dune", HOSTILE]


def make_queue(tmp_path: Path, n: int = 6, **options) -> tuple[dict, dict[str, str]]:
    """``n`` images in a folder, a class CSV, a queue over them and users alice and bob; returns
    (the label.py options as a dict, user -> token)."""
    for i in range(n):
        write_jpeg(tmp_path / "images" / f"img{i:02d}.jpg", size=64, shade=20 * i)
    classes = tmp_path / "classes.csv"
    classes.write_text("".join(f"{i},{name}\n" for i, name in enumerate(CLASS_NAMES)))
    users = tmp_path / "users.txt"
    tokens = {name: add_user(users, name) for name in ("alice", "bob")}
    cfg = {"queue": str(tmp_path / "q.sqlite"), "images": str(tmp_path / "images"), "classes": str(classes),
           "users": str(users), "cache_dir": str(tmp_path / "cache"), **options}
    open_queue(label_options({"command": "add", **cfg})).close()
    return cfg, tokens


def label_app(cfg: dict):
    opts = label_options(cfg)
    return create_label_app(opts, read_users(opts.users))


def events(cfg: dict) -> list[tuple]:
    with LabelStore.open(cfg["queue"]) as store:
        return [(e.item_id, e.user, e.action, e.class_id, e.undone_at is not None) for e in store.history()]
