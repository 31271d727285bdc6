"""Combine catalogs (shards of one archive, or deliveries classified apart) into one.

Shards own disjoint paths, so merging them gives exactly the single-run catalog. When two catalogs
hold the same (model, path), the later write wins, and the invariant of ``catalog.py`` (a path is
a prediction or an error, never both) is restored in the same transaction. Each input catalog is
merged in one transaction: an interrupted merge re-run gives the same result.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from deepmars.prediction.catalog import ERROR_COLUMNS, PREDICTION_COLUMNS, Catalog
from deepmars.prediction.options import MergeOptions

_KEY = ("model_id", "path")


@dataclass(frozen=True)
class MergeCounts:
    catalogs: int
    predictions: int
    errors: int
    runs: int


def _upsert(table: str, columns: tuple[str, ...], time_column: str) -> str:
    """INSERT .. SELECT from the attached catalog; on a key clash the newer row wins."""
    cols = ", ".join(columns)
    updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in _KEY)
    # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT (documented upsert quirk).
    return (f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM src.{table} WHERE true "
            f"ON CONFLICT(model_id, path) DO UPDATE SET {updates} "
            f"WHERE excluded.{time_column} > main.{table}.{time_column}")


_RESOLVE_BOTH = (
    # A path that is now both a prediction and an error keeps the later of the two.
    "DELETE FROM main.errors WHERE EXISTS (SELECT 1 FROM main.predictions p WHERE p.model_id = errors.model_id "
    "AND p.path = errors.path AND p.classified_at >= errors.failed_at)",
    "DELETE FROM main.predictions WHERE EXISTS (SELECT 1 FROM main.errors e WHERE e.model_id = predictions.model_id "
    "AND e.path = predictions.path AND e.failed_at > predictions.classified_at)",
)


def merge_catalogs(inputs: list[Path], output: Path) -> MergeCounts:
    """Merge ``inputs`` into ``output`` (created if missing, merged into if it exists)."""
    for path in inputs:
        Catalog.open(path, create=False).close()  # schema check and WAL folded in before attaching
    with Catalog.open(output) as out:
        conn = out.conn
        for path in inputs:
            conn.execute("ATTACH DATABASE ? AS src", (str(path),))
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR IGNORE INTO main.models SELECT * FROM src.models")
                conn.execute(_upsert("predictions", PREDICTION_COLUMNS, "classified_at"))
                conn.execute(_upsert("errors", ERROR_COLUMNS, "failed_at"))
                conn.execute("INSERT OR IGNORE INTO main.runs SELECT * FROM src.runs")
                for statement in _RESOLVE_BOTH:
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.execute("DETACH DATABASE src")
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("predictions", "errors", "runs")]
    return MergeCounts(len(inputs), *counts)


def run_merge(opts: MergeOptions, out: TextIO | None = None) -> MergeCounts:
    out = out or sys.stdout
    counts = merge_catalogs(opts.inputs, opts.catalog)
    print(f"merged {counts.catalogs} catalogs into {opts.catalog}: {counts.predictions} predictions, "
          f"{counts.errors} errors, {counts.runs} runs", file=out)
    return counts
