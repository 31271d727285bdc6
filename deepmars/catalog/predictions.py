"""The whole-image tables: look-ups that skip done files, and one transaction per batch.

``predictions`` and ``errors`` are both keyed by (model_id, path), and a path is in at most one of
them for a model: writing a prediction deletes the path's error row and vice versa, in the same
transaction. Re-processing a path replaces its row, so a re-run after a crash converges to the
uninterrupted result and nothing is ever duplicated.

Callers pass file system paths; the store writes and compares them by ``paths.to_catalog_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from deepmars.catalog.connection import Catalog
from deepmars.catalog.paths import storable_row, to_catalog_path
from deepmars.catalog.rows import ErrorRow, PredictionRow, columns

# SQLite allows 32766 host parameters; lookups go in blocks well below that.
LOOKUP_BLOCK = 900


def insert_sql(table: str, row_type: type[tuple], verb: str = "INSERT") -> str:
    cols = columns(row_type)
    quoted = ", ".join(f'"{c}"' for c in cols)
    return f"{verb} INTO {table} ({quoted}) VALUES ({', '.join('?' * len(cols))})"


def upsert_sql(table: str, row_type: type[tuple], key: tuple[str, ...]) -> str:
    """INSERT, or on a key clash UPDATE the row in place (its row id kept).

    Not INSERT OR REPLACE: a replace deletes the old row without firing delete triggers (unless
    recursive triggers are on), which would leave the search tables counting it.
    """
    updates = ", ".join(f'"{c}"=excluded."{c}"' for c in columns(row_type) if c not in key and c != "id")
    return insert_sql(table, row_type) + f" ON CONFLICT({', '.join(key)}) DO UPDATE SET {updates}"


_INSERT_PREDICTION = upsert_sql("predictions", PredictionRow, ("model_id", "path"))
_INSERT_ERROR = insert_sql("errors", ErrorRow, "INSERT OR REPLACE")


class KnownPrediction(NamedTuple):
    """A stored prediction reused for identical content under another path."""

    width: int
    height: int
    predicted_class: str
    confidence: float
    top_k: str


class PredictionStore:
    """One model's whole-image rows in an open catalog."""

    def __init__(self, catalog: Catalog, model_id: str):
        self.catalog = catalog
        self.model_id = model_id

    def unchanged_paths(self, stats: Sequence[tuple[str, int, int]]) -> set[str]:
        """Paths of ``stats`` (path, size, mtime_ns) already classified by this model as they are now."""
        done: set[str] = set()
        for start in range(0, len(stats), LOOKUP_BLOCK):
            wanted = {to_catalog_path(p): (p, s, m) for p, s, m in stats[start:start + LOOKUP_BLOCK]}
            rows = self.catalog.conn.execute(
                f"SELECT path, file_size, file_mtime_ns FROM predictions WHERE model_id=? "
                f"AND path IN ({', '.join('?' * len(wanted))})", (self.model_id, *wanted))
            done.update(wanted[p][0] for p, s, m in rows if wanted[p][1:] == (s, m))
        return done

    def known(self, sha256: str) -> KnownPrediction | None:
        """A stored prediction for this content, if this model has classified it under any path."""
        row = self.catalog.conn.execute(
            "SELECT width, height, predicted_class, confidence, top_k FROM predictions "
            "WHERE model_id=? AND sha256=? ORDER BY path LIMIT 1", (self.model_id, sha256)).fetchone()
        return None if row is None else KnownPrediction(*row)

    def write_batch(self, predictions: Sequence[PredictionRow], errors: Sequence[ErrorRow]) -> None:
        """Write one batch atomically; each path ends up either a prediction or an error."""
        predictions = [storable_row(r) for r in predictions]
        errors = [storable_row(r) for r in errors]
        with self.catalog.transaction() as conn:
            if predictions:
                conn.executemany(_INSERT_PREDICTION, predictions)
                conn.executemany("DELETE FROM errors WHERE model_id=? AND path=?",
                                 [(r.model_id, r.path) for r in predictions])
            if errors:
                conn.executemany(_INSERT_ERROR, errors)
                conn.executemany("DELETE FROM predictions WHERE model_id=? AND path=?",
                                 [(r.model_id, r.path) for r in errors])
