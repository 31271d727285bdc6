"""The landmark tables: look-ups that skip done images, and per-image writes.

Identity and replacement rules:

- An image is its content (``sha256``) under one model. Content already classified with the same
  detector settings is not done again, whatever path or name it has now, so a copied or moved
  archive is neither re-detected nor counted twice.
- Within a model a source name (``ESP_072719_1970_RED``) and a path each belong to one image:
  writing an image first deletes every earlier image of that model with the same content, source
  name or path (a file changed in place, re-detected with other settings, or replaced with
  ``force=true``), with its landmarks and counts.
- An image's rows, its counts and the removal of its path's error row are one transaction, as a
  failure's error row and the removal of that path's image are: a process killed at any moment
  leaves the image wholly written or not at all, and a re-run converges to the uninterrupted result.

Callers pass file system paths; the store writes and compares them by ``paths.to_catalog_path``.
A ``StoredImage`` holds the path as stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from deepmars.catalog.connection import Catalog
from deepmars.catalog.paths import storable_row, to_catalog_path
from deepmars.catalog.predictions import insert_sql
from deepmars.catalog.rows import ErrorRow, LandmarkCountRow, LandmarkImageRow, LandmarkRow

_INSERT_IMAGE = insert_sql("landmark_images", LandmarkImageRow)
_INSERT_LANDMARK = insert_sql("landmarks", LandmarkRow)
_INSERT_COUNT = insert_sql("landmark_counts", LandmarkCountRow)
_INSERT_ERROR = insert_sql("errors", ErrorRow, "INSERT OR REPLACE")
# Child tables first: an image's rows go before the image itself.
IMAGE_TABLES = ("landmarks", "landmark_counts", "landmark_images")


class StoredImage(NamedTuple):
    """What the catalog holds about one classified image."""

    sha256: str
    source_image: str
    path: str
    detector: str
    landmarks: int


def count_by_class(rows: Iterable[tuple[str, float]], classes: Sequence[str], threshold: float) -> dict[str, int]:
    """Landmarks per class with confidence >= ``threshold``, every class present (0 if none).

    ``rows`` are (predicted class, confidence) as stored, so a count equals a SQL count over the rows.
    """
    counts = dict.fromkeys(classes, 0)
    for name, confidence in rows:
        if confidence >= threshold:
            counts[name] = counts.get(name, 0) + 1
    return counts


def count_rows(model_id: str, sha256: str, source_image: str, threshold: float,
               counts: dict[str, int]) -> list[LandmarkCountRow]:
    """One landmark_counts row per class."""
    return [LandmarkCountRow(model_id, sha256, threshold, name, source_image, n) for name, n in counts.items()]


def delete_images(conn: sqlite3.Connection, model_id: str, shas: Iterable[str]) -> None:
    """Remove images of ``model_id`` with their landmarks and counts (inside the caller's transaction)."""
    keys = [(model_id, sha) for sha in shas]
    for table in IMAGE_TABLES:
        conn.executemany(f"DELETE FROM {table} WHERE model_id = ? AND sha256 = ?", keys)


class LandmarkStore:
    """One model's landmark rows in an open catalog."""

    def __init__(self, catalog: Catalog, model_id: str):
        self.catalog = catalog
        self.conn = catalog.conn
        self.model_id = model_id

    # ------------------------------------------------------------------ look-ups
    def _image(self, where: str, params: tuple) -> StoredImage | None:
        row = self.conn.execute(
            f"SELECT sha256, source_image, path, detector, landmarks FROM landmark_images "
            f"WHERE model_id = ? AND {where} LIMIT 1", (self.model_id, *params)).fetchone()
        return None if row is None else StoredImage(*row)

    def unchanged(self, path: str, size: int, mtime_ns: int, detector: str) -> StoredImage | None:
        """The image done from this very file (same path, size, mtime) with these settings: skip it unread."""
        return self._image("path = ? AND file_size = ? AND file_mtime_ns = ? AND detector = ?",
                           (to_catalog_path(path), size, mtime_ns, detector))

    def by_content(self, sha256: str) -> StoredImage | None:
        return self._image("sha256 = ?", (sha256,))

    def by_source(self, source_image: str) -> StoredImage | None:
        return self._image("source_image = ?", (source_image,))

    def counts(self, sha256: str, threshold: float) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT class, n FROM landmark_counts WHERE model_id = ? AND sha256 = ? AND count_confidence = ?",
            (self.model_id, sha256, threshold))
        return dict(rows.fetchall())

    # -------------------------------------------------------------------- writes
    def write_image(self, image: LandmarkImageRow, landmarks: Sequence[LandmarkRow],
                    counts: Sequence[LandmarkCountRow]) -> None:
        """Replace whatever this image supersedes, then insert it."""
        image = storable_row(image)
        landmarks = [storable_row(r) for r in landmarks]
        counts = [storable_row(r) for r in counts]
        with self.catalog.transaction() as conn:
            self._delete_images("sha256 = ? OR source_image = ? OR path = ?",
                                (image.sha256, image.source_image, image.path))
            conn.execute(_INSERT_IMAGE, image)
            conn.executemany(_INSERT_LANDMARK, landmarks)
            conn.executemany(_INSERT_COUNT, counts)
            conn.execute("DELETE FROM errors WHERE model_id = ? AND path = ?", (self.model_id, image.path))

    def write_error(self, error: ErrorRow) -> None:
        """Record why a path failed; an image earlier done from that path is gone from it, so its rows go."""
        error = storable_row(error)
        with self.catalog.transaction() as conn:
            self._delete_images("path = ?", (error.path,))
            conn.execute(_INSERT_ERROR, error)

    def clear_error(self, path: str) -> None:
        """A path whose content is classified is no longer an error."""
        with self.catalog.transaction() as conn:
            conn.execute("DELETE FROM errors WHERE model_id = ? AND path = ?", (self.model_id, to_catalog_path(path)))

    def add_counts(self, stored: StoredImage, classes: Sequence[str], threshold: float) -> dict[str, int]:
        """Counts of a stored image at ``threshold``, computed from its rows and written if missing."""
        existing = self.counts(stored.sha256, threshold)
        if existing:
            return existing
        rows = self.conn.execute("SELECT predicted_class, confidence FROM landmarks WHERE model_id = ? AND sha256 = ?",
                                 (self.model_id, stored.sha256))
        counts = count_by_class(rows, classes, threshold)
        with self.catalog.transaction() as conn:
            conn.executemany(_INSERT_COUNT, count_rows(self.model_id, stored.sha256, stored.source_image,
                                                       threshold, counts))
        return counts

    def _delete_images(self, where: str, params: tuple) -> None:
        shas = [r[0] for r in self.conn.execute(
            f"SELECT sha256 FROM landmark_images WHERE model_id = ? AND ({where})", (self.model_id, *params))]
        delete_images(self.conn, self.model_id, shas)
