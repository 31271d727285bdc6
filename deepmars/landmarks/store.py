"""The landmark tables of the prediction catalog: look-ups that skip done images, and per-image writes.

Identity and replacement rules (the tables are in ``deepmars/prediction/catalog.py``):

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
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from deepmars.prediction.catalog import (ERROR_COLUMNS, LANDMARK_COLUMNS, LANDMARK_COUNT_COLUMNS,
                                         LANDMARK_IMAGE_COLUMNS, Catalog)


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_INSERT_IMAGE = _insert("landmark_images", LANDMARK_IMAGE_COLUMNS)
_INSERT_LANDMARK = _insert("landmarks", LANDMARK_COLUMNS)
_INSERT_COUNT = _insert("landmark_counts", LANDMARK_COUNT_COLUMNS)
_INSERT_ERROR = _insert("errors", ERROR_COLUMNS).replace("INSERT", "INSERT OR REPLACE", 1)


@dataclass(frozen=True)
class StoredImage:
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


class LandmarkStore:
    """One model's landmark rows in an open catalog."""

    def __init__(self, catalog: Catalog, model_id: str):
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
                           (path, size, mtime_ns, detector))

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
    def write_image(self, image: tuple, landmarks: Sequence[tuple], counts: Sequence[tuple]) -> None:
        """Replace whatever this image supersedes, then insert it; rows follow the catalog's column tuples."""
        fields = dict(zip(LANDMARK_IMAGE_COLUMNS, image, strict=True))
        sha256, source, path = fields["sha256"], fields["source_image"], fields["path"]
        with _transaction(self.conn):
            self._delete_images("sha256 = ? OR source_image = ? OR path = ?", (sha256, source, path))
            self.conn.execute(_INSERT_IMAGE, image)
            self.conn.executemany(_INSERT_LANDMARK, landmarks)
            self.conn.executemany(_INSERT_COUNT, counts)
            self.conn.execute("DELETE FROM errors WHERE model_id = ? AND path = ?", (self.model_id, path))

    def write_error(self, error: tuple) -> None:
        """Record why a path failed; an image earlier done from that path is gone from it, so its rows go."""
        path = dict(zip(ERROR_COLUMNS, error, strict=True))["path"]
        with _transaction(self.conn):
            self._delete_images("path = ?", (path,))
            self.conn.execute(_INSERT_ERROR, error)

    def clear_error(self, path: str) -> None:
        """A path whose content is classified is no longer an error (autocommit: one statement)."""
        self.conn.execute("DELETE FROM errors WHERE model_id = ? AND path = ?", (self.model_id, path))

    def add_counts(self, stored: StoredImage, classes: Sequence[str], threshold: float) -> dict[str, int]:
        """Counts of a stored image at ``threshold``, computed from its rows and written if missing."""
        existing = self.counts(stored.sha256, threshold)
        if existing:
            return existing
        rows = self.conn.execute("SELECT predicted_class, confidence FROM landmarks WHERE model_id = ? AND sha256 = ?",
                                 (self.model_id, stored.sha256))
        counts = count_by_class(rows, classes, threshold)
        with _transaction(self.conn):
            self.conn.executemany(_INSERT_COUNT, count_rows(self.model_id, stored.sha256, stored.source_image,
                                                            threshold, counts))
        return counts

    def _delete_images(self, where: str, params: tuple) -> None:
        shas = [r[0] for r in self.conn.execute(
            f"SELECT sha256 FROM landmark_images WHERE model_id = ? AND ({where})", (self.model_id, *params))]
        for table in ("landmarks", "landmark_counts", "landmark_images"):
            self.conn.executemany(f"DELETE FROM {table} WHERE model_id = ? AND sha256 = ?",
                                  [(self.model_id, sha) for sha in shas])


def count_rows(model_id: str, sha256: str, source_image: str, threshold: float,
               counts: dict[str, int]) -> list[tuple]:
    """landmark_counts rows (LANDMARK_COUNT_COLUMNS order), one per class."""
    return [(model_id, sha256, threshold, name, source_image, n) for name, n in counts.items()]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception (KeyboardInterrupt included)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
