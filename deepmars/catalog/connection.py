"""Opening a catalog file: create or migrate it, refuse what is not one, and write transactions.

Crash safety comes from SQLite itself: every write is one ``BEGIN IMMEDIATE .. COMMIT``
transaction in WAL mode, so a process killed at any moment leaves either the whole transaction or
none of it (SQLite rolls a half-written one back on the next open); with ``synchronous=NORMAL`` a
committed transaction survives a killed process. A file that is not a catalog is refused before
anything in it changes (not even its journal mode), and a catalog held by another process's write
lock beyond ``LOCK_TIMEOUT_S`` is a ``CatalogLocked`` error that says so, not a traceback.
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
from deepmars.catalog.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, TABLES
from deepmars.errors import DataError

# Seconds a writer waits for another process's write lock: long enough for any one batch.
LOCK_TIMEOUT_S = 60.0


class CatalogLocked(DataError):
    """Another process holds the catalog's write lock for longer than LOCK_TIMEOUT_S."""


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def lock_errors_named(path: Path) -> Iterator[None]:
    """SQLite's 'database is locked' becomes a CatalogLocked naming the file and what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not _is_lock_error(exc):
            raise
        raise CatalogLocked(f"the catalog is locked by another process (waited {LOCK_TIMEOUT_S:g} s: {exc}); "
                            "wait for it to finish, or write to another catalog= file", path) from None


@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE .. COMMIT, rolled back on any exception (KeyboardInterrupt included); a lock
    held by another process is named with ``path``."""
    with lock_errors_named(path):
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    with lock_errors_named(path):
        conn.execute("COMMIT")


class Catalog:
    """One open catalog file. Not shared between processes; workers use ``open_reader``."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, create: bool = True) -> Catalog:
        """Open (and with ``create``, create) a catalog; DataError if it is not one we can use."""
        path = Path(path)
        if not create and not path.is_file():
            raise DataError("no such catalog (run `python predict.py input=... model=...` or `python "
                            "landmarks.py classify input=... model=...` first, or set catalog=...)", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"cannot open as an SQLite catalog ({exc})", path) from None
        try:
            with lock_errors_named(path):
                _check_is_catalog(conn, path)  # before anything is written, WAL mode included
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                _ensure_schema(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise DataError(f"not a usable SQLite catalog ({exc})", path) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        """Fold the WAL back into the main file so the catalog is one self-contained file."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # a reader still holds the WAL: it is folded in by the next close
        finally:
            self.conn.close()

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


def _check_is_catalog(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file of another program, or of a newer deepmars, without writing to it."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DataError(f"catalog schema {version} was written by a newer deepmars; this one reads "
                        f"schema {SCHEMA_VERSION}", path)
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if version == 0 and tables:
        raise DataError("an SQLite file that is not a deepmars catalog (no schema version); "
                        "choose another catalog path", path)


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create a new catalog, or migrate an older one in place."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the write lock: two processes may create or migrate the same file at once.
        _check_is_catalog(conn, path)
        _upgrade(conn, conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")  # a failed migration leaves the catalog as it was
        raise


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """From ``version`` to SCHEMA_VERSION, inside the caller's transaction (SQLite DDL is transactional)."""
    if version == 0:
        _execute_script(conn, SCHEMA)
        version = 1
    for target in range(version + 1, SCHEMA_VERSION + 1):
        migration = MIGRATIONS[target]
        if isinstance(migration, str):
            _execute_script(conn, migration)
        else:
            for statement in migration:
                conn.execute(statement)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    # Statement by statement (executescript would commit early); the scripts have no ';' in comments.
    for statement in filter(str.strip, script.split(";")):
        conn.execute(statement)


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for worker processes (WAL lets them read while the main one writes)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=LOCK_TIMEOUT_S, check_same_thread=False)
