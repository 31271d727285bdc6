"""The catalog file: ``Catalog`` (opened, created, migrated or refused as a versioned SQLite file of
kind ``CATALOG``, see ``deepmars.catalog.sqlite_file``), its models and runs, and reads.

Every write is one ``transaction`` (``BEGIN IMMEDIATE .. COMMIT`` in WAL mode): a process killed
at any moment leaves either the whole transaction or none of it, and a catalog held by another
process's write lock beyond ``LOCK_TIMEOUT_S`` is a ``CatalogLocked`` error that says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from deepmars.catalog.paths import to_catalog_path
from deepmars.catalog.rows import ModelInfo, utc_now
from deepmars.catalog.schema import CATALOG, TABLES
from deepmars.catalog.sqlite_file import LOCK_TIMEOUT_S, close_versioned, immediate_transaction, open_versioned


class Catalog:
    """One open catalog file. Not shared between processes; workers use ``open_reader``."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, create: bool = True) -> Catalog:
        """Open (and with ``create``, create) a catalog; DataError if it is not one we can use."""
        return cls(open_versioned(path, CATALOG, create=create), Path(path))

    def close(self) -> None:
        """Fold the WAL back into the main file so the catalog is one self-contained file."""
        close_versioned(self.conn)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception (KeyboardInterrupt included)."""
        with immediate_transaction(self.conn, self.path) as conn:
            yield conn

    # ------------------------------------------------------------------ models
    def register_model(self, info: ModelInfo) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?, ?, ?)",
                (info.model_id, json.dumps(info.class_names), info.dataset, float(info.temperature),
                 json.dumps(info.preprocess, sort_keys=True), json.dumps(info.model_cfg, sort_keys=True)))

    def models(self) -> list[ModelInfo]:
        rows = self.conn.execute("SELECT * FROM models ORDER BY model_id").fetchall()
        return [ModelInfo(r[0], json.loads(r[1]), r[2], r[3], json.loads(r[4]), json.loads(r[5]))
                for r in rows]

    def class_names(self, model_id: str) -> list[str]:
        row = self.conn.execute("SELECT class_names FROM models WHERE model_id = ?", (model_id,)).fetchone()
        return [] if row is None else json.loads(row[0])

    # -------------------------------------------------------------------- runs
    def start_run(self, model_id: str, input_spec: str, shard: str | None, config: dict,
                  command: str = "predict") -> str:
        """Log a run as started; ``command`` is the tool (predict or landmarks) that writes its rows.

        ``input_spec`` (a folder, glob or list file) is stored by the catalog's path rule."""
        run_id = uuid.uuid4().hex
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, model_id, input, shard, started_at, config, command) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, model_id, to_catalog_path(input_spec), shard, utc_now(),
                 json.dumps(config, sort_keys=True, default=str), command))
        return run_id

    def finish_run(self, run_id: str, classified: int, reused: int, skipped: int, failed: int,
                   exit_code: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at=?, classified=?, reused=?, skipped=?, failed=?, exit_code=? "
                "WHERE run_id=?", (utc_now(), classified, reused, skipped, failed, exit_code, run_id))

    def latest_run_model(self, command: str) -> str | None:
        """The model of the latest run of ``command`` (predict or landmarks), if any."""
        row = self.conn.execute("SELECT model_id FROM runs WHERE command = ? ORDER BY started_at DESC LIMIT 1",
                                (command,)).fetchone()
        return None if row is None else row[0]

    # ------------------------------------------------------------------- reads
    def rows(self, table: str, exclude: Iterable[str] = ()) -> list[tuple]:
        """All rows of ``table`` minus some columns and the file's own row ids, sorted: for comparing catalogs."""
        local = set(TABLES[table].local) if table in TABLES else set()
        cols = [c for c in self.columns(table) if c not in set(exclude) | local]
        quoted = ", ".join(f'"{c}"' for c in cols)
        return self.conn.execute(f"SELECT {quoted} FROM {table} ORDER BY 1, 2").fetchall()

    def columns(self, table: str) -> list[str]:
        return [name for name, _ in self.column_types(table)]

    def column_types(self, table: str) -> list[tuple[str, str]]:
        """(name, declared SQLite type) of each column, in table order."""
        return [(r[1], r[2]) for r in self.conn.execute(f"PRAGMA table_info({table})")]


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for worker processes (WAL lets them read while the main one writes)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, check_same_thread=False)
