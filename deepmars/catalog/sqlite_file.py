"""Opening a versioned SQLite file of one kind (a label queue, ...): create, migrate, or refuse it.

The file's ``PRAGMA user_version`` is its schema version and a marker table says which kind of
file it is, so a catalog given where a label queue is expected (or any other SQLite file) is
refused before anything in it changes, not even its journal mode. A new file is created at
schema 1 and migrated, so new and migrated files have the same tables in the same column order.
Every file is in WAL mode with ``synchronous=NORMAL``: a committed transaction survives a killed
process, and readers never block the writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deepmars.catalog.connection import LOCK_TIMEOUT_S, lock_errors_named
from deepmars.errors import DataError


@dataclass(frozen=True)
class SchemaSpec:
    """One kind of file: its name in messages, current version, schema 1 and the migrations after it."""

    kind: str
    version: int
    schema: str  # schema 1; no ';' inside comments (statements are split on it)
    migrations: Mapping[int, str]  # version reached -> statements from the version before
    marker_table: str  # a table only this kind of file has
    hint: str = ""  # what to do instead, appended to a refusal


def open_versioned(path: str | Path, spec: SchemaSpec, create: bool = True) -> sqlite3.Connection:
    """A connection (autocommit; use ``BEGIN IMMEDIATE`` for writes) to a file of ``spec``'s kind."""
    path = Path(path)
    if not create and not path.is_file():
        raise DataError(f"no such {spec.kind}" + (f" ({spec.hint})" if spec.hint else ""), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.DatabaseError as exc:
        raise DataError(f"cannot open as an SQLite {spec.kind} ({exc})", path) from None
    try:
        with lock_errors_named(path):
            _check_kind(conn, path, spec)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            _ensure_schema(conn, path, spec)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(f"not a usable SQLite {spec.kind} ({exc})", path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_kind(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables and version == 0:
        return  # a new, empty file
    hint = f"; {spec.hint}" if spec.hint else ""
    if spec.marker_table not in tables:
        raise DataError(f"an SQLite file that is not a deepmars {spec.kind} (no {spec.marker_table} table)"
                        + hint, path)
    if version > spec.version:
        raise DataError(f"{spec.kind} schema {version} was written by a newer deepmars; this one reads "
                        f"schema {spec.version}", path)


def _ensure_schema(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == spec.version:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        _check_kind(conn, path, spec)  # again inside the lock: two processes may create one file at once
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            _execute_script(conn, spec.schema)
            version = 1
        for target in range(version + 1, spec.version + 1):
            _execute_script(conn, spec.migrations[target])
        conn.execute(f"PRAGMA user_version={spec.version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")  # a failed migration leaves the file as it was
        raise


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    # Statement by statement: executescript would commit in the middle of the transaction.
    for statement in filter(str.strip, script.split(";")):
        conn.execute(statement)
