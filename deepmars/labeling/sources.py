"""The images a queue labels, with the posteriors that rank them.

``images=`` is one of:

- a landmarks.py output folder (``labels-map-proj.txt`` + ``map-proj/``): every crop its labels
  template lists; the labels file names crops relative to ``map-proj/``, and so does the export;
- a predict.py catalog (an SQLite file): every image the model classified, with its posteriors,
  and every image it failed on, marked unlabelable with the catalog's reason;
- a folder: every image under it (recursive), named relative to it.

``posteriors=<catalog>`` ranks a folder or landmark crops by a catalog's posteriors: whole-image
predictions matched by path, landmark rows (``landmarks.py classify crops_dir=...``) by crop name.
The model's classes must all be in the queue's class list, so a suggestion is always a button.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deepmars.catalog import Catalog
from deepmars.catalog.choice import choose_model
from deepmars.catalog.labels import ClassList, NewItem
from deepmars.catalog.paths import existing_fs_path, to_catalog_path
from deepmars.data.images import load_image
from deepmars.errors import ConfigError, ImageError
from deepmars.labeling.order import from_top_k, random_key
from deepmars.landmarks.outputs import IMAGE_DIR, LABELS_FILE
from deepmars.prediction.inputs import iter_inputs

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Posterior:
    model_id: str
    suggestion: str
    confidence: float
    top_k: str
    num_classes: int


@dataclass(frozen=True)
class SourceImage:
    """An image as the queue stores it: paths and names in the catalog's text form
    (``deepmars.catalog.paths``: bytes that are not UTF-8 as ``\\xNN``)."""

    path: str  # absolute
    name: str  # relative to root
    root: str
    unlabelable: str | None = None


def source_kind(spec: str) -> str:
    """'landmarks', 'catalog' or 'folder' for an ``images=`` value; ConfigError if it names nothing usable."""
    path = Path(spec)
    if path.is_dir():
        return "landmarks" if (path / LABELS_FILE).is_file() and (path / IMAGE_DIR).is_dir() else "folder"
    if path.is_file() and _is_sqlite(path):
        return "catalog"
    raise ConfigError(f"images: {spec!r} is not a landmarks.py output folder, a predict.py catalog "
                      "(SQLite file) or a folder of images")


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def list_images(spec: str, model: str | None = None, tracking_uri: str | None = None) -> list[SourceImage]:
    kind = source_kind(spec)
    if kind == "landmarks":
        return list(_landmark_crops(Path(spec).resolve()))
    if kind == "folder":
        root = Path(spec).resolve()
        return [SourceImage(to_catalog_path(p), to_catalog_path(Path(p).relative_to(root).as_posix()),
                            to_catalog_path(root)) for p in iter_inputs(str(root))]
    with Catalog.open(spec, create=False) as catalog:
        model_id = _catalog_model(catalog, model, tracking_uri)
        rows = catalog.conn.execute("SELECT path, NULL FROM predictions WHERE model_id = ? UNION ALL "
                                    "SELECT path, reason FROM errors WHERE model_id = ? ORDER BY 1",
                                    (model_id, model_id)).fetchall()
    return _under_common_root(rows)


def _landmark_crops(out: Path) -> Iterator[SourceImage]:
    root = out / IMAGE_DIR
    seen = set()
    with open(out / LABELS_FILE, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] not in seen:
                seen.add(fields[0])
                yield SourceImage(to_catalog_path(root / fields[0]), to_catalog_path(fields[0]), to_catalog_path(root))


def _under_common_root(rows: Iterable[tuple[str, str | None]]) -> list[SourceImage]:
    rows = list(rows)
    if not rows:
        return []
    root = os.path.commonpath([os.path.dirname(p) for p, _ in rows])  # stored paths: already catalog text
    return [SourceImage(p, Path(p).relative_to(root).as_posix(), root, reason) for p, reason in rows]


def _catalog_model(catalog: Catalog, model: str | None, tracking_uri: str | None) -> str:
    ids = [r[0] for r in catalog.conn.execute("SELECT DISTINCT model_id FROM predictions UNION "
                                              "SELECT DISTINCT model_id FROM landmarks ORDER BY 1")]
    model_id = choose_model(catalog, ids, model, tracking_uri, "predict")
    if model_id is None:
        raise ConfigError(f"{catalog.path}: the catalog holds no predictions to rank images by")
    return model_id


def read_posteriors(catalog_path: str, classes: ClassList, model: str | None = None,
                    tracking_uri: str | None = None) -> tuple[dict[str, Posterior], dict[str, Posterior]]:
    """(by absolute path, by landmark crop name) of one model's rows in a catalog."""
    with Catalog.open(catalog_path, create=False) as catalog:
        model_id = _catalog_model(catalog, model, tracking_uri)
        names = catalog.class_names(model_id)
        outside = [n for n in names if n not in classes.names]
        if outside:
            raise ConfigError(f"model {model_id} predicts classes {outside} that are not in the queue's class list "
                              f"{classes.describe()}: its suggestions would be no button; use a model of these classes")
        n = len(names)
        by_path = {p: Posterior(model_id, c, conf, tk, n) for p, c, conf, tk in catalog.conn.execute(
            "SELECT path, predicted_class, confidence, top_k FROM predictions WHERE model_id = ?", (model_id,))}
        by_crop = {f: Posterior(model_id, c, conf, tk, n) for f, c, conf, tk in catalog.conn.execute(
            "SELECT crop_file, predicted_class, confidence, top_k FROM landmarks WHERE model_id = ? "
            "AND crop_file IS NOT NULL", (model_id,))}
    return by_path, by_crop


def check_decodable(path: str) -> str | None:
    """Why an image cannot be shown to a person, or None if it decodes."""
    try:
        load_image(existing_fs_path(path), "RGB")
    except ImageError as exc:
        return exc.reason
    return None


def new_items(images: list[SourceImage], seed: int, posteriors: tuple[dict, dict] | None = None,
              check: set[str] | None = None) -> list[NewItem]:
    """Queue rows for ``images``; the paths in ``check`` are decoded first (new images only)."""
    by_path, by_crop = posteriors or ({}, {})
    out = []
    for im in images:
        reason = im.unlabelable or (check_decodable(im.path) if check and im.path in check else None)
        out.append(_item(im, seed, by_path.get(im.path) or by_crop.get(Path(im.path).name), reason))
    return out


def _item(im: SourceImage, seed: int, post: Posterior | None, reason: str | None) -> NewItem:
    key = random_key(seed, im.path)
    if post is None:
        return NewItem(im.path, im.name, im.root, key, unlabelable=reason)
    s = from_top_k(post.top_k, post.num_classes)
    return NewItem(im.path, im.name, im.root, key, post.model_id, post.suggestion, float(post.confidence),
                   s.margin, s.entropy, post.top_k, reason)


def known_paths(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT path FROM items")}
