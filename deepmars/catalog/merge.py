"""Combine catalogs (shards of one archive, or deliveries classified apart) into one, every table.

Shards own disjoint paths, so merging them gives exactly the single-run catalog. Where two
catalogs hold the same row key, the later write wins, and the rules of the single catalog hold
afterwards too:

- ``predictions`` / ``errors`` (key: model, path): the newer row wins; a path left as both a
  prediction and an error keeps the later of the two;
- ``landmark_images`` with their ``landmarks`` and ``landmark_counts`` move as one image: an image
  replaces the images it clashes with (same content, source name or path under that model) only
  when it is newer than all of them, and brings all its rows; a path left as both a landmark image
  and an error keeps the later of the two;
- ``models`` and ``runs``: every row, once;
- the search tables (FTS5 text, facet counts) are kept by triggers on the tables above, so they
  are right after a merge without being copied (``DERIVED_TABLES``).

Each input catalog is merged in one transaction, so an interrupted merge re-run gives the same
result. ``MERGES`` says how each table of the schema is merged; a table without an entry stops
the merge before anything is written, so a new table cannot be silently dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepmars.catalog.connection import Catalog
from deepmars.catalog.landmarks import IMAGE_TABLES, delete_images
from deepmars.catalog.schema import DERIVED_TABLES, TABLES
from deepmars.errors import DataError


@dataclass(frozen=True)
class MergeCounts:
    catalogs: int
    rows: dict[str, int]  # table -> rows in the merged catalog


def _cols(table: str, prefix: str = "") -> str:
    return ", ".join(f'{prefix}"{c}"' for c in TABLES[table].shared_columns)


def _insert_missing(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"INSERT OR IGNORE INTO main.{table} ({_cols(table)}) SELECT {_cols(table)} FROM src.{table}")


def _upsert_newer(conn: sqlite3.Connection, table: str) -> None:
    """INSERT .. SELECT from the attached catalog; on a key clash the newer row wins."""
    spec = TABLES[table]
    updates = ", ".join(f'"{c}"=excluded."{c}"' for c in spec.shared_columns if c not in spec.key)
    # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT (documented upsert quirk).
    conn.execute(f"INSERT INTO main.{table} ({_cols(table)}) SELECT {_cols(table)} FROM src.{table} WHERE true "
                 f"ON CONFLICT({', '.join(spec.key)}) DO UPDATE SET {updates} "
                 f"WHERE excluded.{spec.time_column} > main.{table}.{spec.time_column}")


_PATH_EITHER_OR = (
    # A path that is now both a prediction and an error keeps the later of the two.
    "DELETE FROM main.errors WHERE EXISTS (SELECT 1 FROM main.predictions p WHERE p.model_id = errors.model_id "
    "AND p.path = errors.path AND p.classified_at >= errors.failed_at)",
    "DELETE FROM main.predictions WHERE EXISTS (SELECT 1 FROM main.errors e WHERE e.model_id = predictions.model_id "
    "AND e.path = predictions.path AND e.failed_at > predictions.classified_at)",
)


def _merge_whole_images(conn: sqlite3.Connection, table: str) -> None:
    """Images with their landmarks and counts: a newer image replaces every image it clashes with."""
    conn.execute("DROP TABLE IF EXISTS temp.winners")
    conn.execute(
        "CREATE TEMP TABLE winners AS SELECT s.model_id, s.sha256 FROM src.landmark_images s "
        "WHERE NOT EXISTS (SELECT 1 FROM main.landmark_images m WHERE m.model_id = s.model_id "
        "AND (m.sha256 = s.sha256 OR m.source_image = s.source_image OR m.path = s.path) "
        "AND m.classified_at >= s.classified_at)")
    losers = conn.execute(
        "SELECT DISTINCT m.model_id, m.sha256 FROM main.landmark_images m JOIN src.landmark_images s "
        "ON m.model_id = s.model_id AND (m.sha256 = s.sha256 OR m.source_image = s.source_image OR m.path = s.path) "
        "JOIN temp.winners w ON w.model_id = s.model_id AND w.sha256 = s.sha256").fetchall()
    for model_id, sha in losers:
        delete_images(conn, model_id, [sha])
    for name in reversed(IMAGE_TABLES):  # the image row first, then its rows
        conn.execute(f"INSERT INTO main.{name} ({_cols(name)}) SELECT {_cols(name, 't.')} FROM src.{name} t "
                     f"JOIN temp.winners w ON w.model_id = t.model_id AND w.sha256 = t.sha256")
    # Counts at other thresholds of an image both catalogs hold unchanged (same content and time).
    conn.execute(f"INSERT OR IGNORE INTO main.landmark_counts ({_cols('landmark_counts')}) "
                 f"SELECT {_cols('landmark_counts', 'c.')} FROM src.landmark_counts c "
                 "JOIN src.landmark_images s ON s.model_id = c.model_id AND s.sha256 = c.sha256 "
                 "JOIN main.landmark_images m ON m.model_id = s.model_id AND m.sha256 = s.sha256 "
                 "AND m.classified_at = s.classified_at AND m.detector = s.detector")
    conn.execute("DROP TABLE temp.winners")
    # A path that is now both a landmark image and an error keeps the later of the two.
    conn.execute("DELETE FROM main.errors WHERE EXISTS (SELECT 1 FROM main.landmark_images i WHERE "
                 "i.model_id = errors.model_id AND i.path = errors.path AND i.classified_at >= errors.failed_at)")
    stale = conn.execute("SELECT i.model_id, i.sha256 FROM main.landmark_images i JOIN main.errors e "
                         "ON e.model_id = i.model_id AND e.path = i.path AND e.failed_at > i.classified_at").fetchall()
    for model_id, sha in stale:
        delete_images(conn, model_id, [sha])


def _merge_predictions_and_errors(conn: sqlite3.Connection, table: str) -> None:
    _upsert_newer(conn, "predictions")
    _upsert_newer(conn, "errors")
    for statement in _PATH_EITHER_OR:
        conn.execute(statement)


def _merged_with_another(conn: sqlite3.Connection, table: str) -> None:
    """The table is merged together with another one (its entry in MERGES does the work)."""


def _derived_by_triggers(conn: sqlite3.Connection, table: str) -> None:
    """Search text and facet counts follow every insert, update and delete of the tables they
    derive from (``DERIVED_TABLES``), the merge's included: nothing to copy. Each file numbers its
    own rows, so copying another file's would be wrong."""


# Table -> how it is merged, in this order.
MERGES: dict[str, Callable[[sqlite3.Connection, str], None]] = {
    "models": _insert_missing,
    "runs": _insert_missing,
    "predictions": _merge_predictions_and_errors,
    "errors": _merged_with_another,
    "landmark_images": _merge_whole_images,
    "landmarks": _merged_with_another,
    "landmark_counts": _merged_with_another,
    **{name: _derived_by_triggers for name in DERIVED_TABLES},
}


def _check_every_table_is_merged() -> None:
    missing = sorted((set(TABLES) | set(DERIVED_TABLES)) - set(MERGES))
    if missing:
        raise DataError(f"merge does not know how to merge catalog tables {missing}; nothing was merged")


def merge_catalogs(inputs: list[Path], output: Path) -> MergeCounts:
    """Merge ``inputs`` into ``output`` (created if missing, merged into if it exists)."""
    _check_every_table_is_merged()
    for path in inputs:
        Catalog.open(path, create=False).close()  # schema check, migration and WAL folded in before attaching
    with Catalog.open(output) as out:
        for path in inputs:
            _merge_one(out, path)
        rows = {t: out.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    return MergeCounts(len(inputs), rows)


def _merge_one(out: Catalog, path: Path) -> None:
    conn = out.conn
    conn.execute("ATTACH DATABASE ? AS src", (str(path),))
    try:
        with out.transaction():
            for table, merge in MERGES.items():
                merge(conn, table)
    finally:
        conn.execute("DETACH DATABASE src")
