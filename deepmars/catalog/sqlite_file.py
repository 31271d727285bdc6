"""Opening a versioned SQLite file of one kind (a catalog, a label queue): create, migrate, or refuse it.

The file's ``PRAGMA user_version`` is its schema version, and a kind may name a marker table only
its files have, so a file of another kind (a catalog given where a label queue is expected) or of
another program is refused before anything in it changes, not even its journal mode. A new file
is created at schema 1 and migrated, so new and migrated files have the same tables in the same
column order; a failed migration is rolled back and leaves the file as it was.

Crash safety comes from SQLite itself: every write is one ``BEGIN IMMEDIATE .. COMMIT``
transaction in WAL mode, so a process killed at any moment leaves either the whole transaction or
none of it (SQLite rolls a half-written one back on the next open); with ``synchronous=NORMAL`` a
committed transaction survives a killed process, and readers never block the writer. A file held
by another process's write lock beyond ``LOCK_TIMEOUT_S`` is a ``CatalogLocked`` error that says
so, not a traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from deepmars.errors import DataError

# Seconds a writer waits for another process's write lock: long enough for any one batch.
LOCK_TIMEOUT_S = 60.0


class CatalogLocked(DataError):
    """Another process holds the file's write lock for longer than LOCK_TIMEOUT_S."""


@dataclass(frozen=True)
class SchemaSpec:
    """One kind of file: its name in messages, current version, schema 1 and the migrations after it."""

    kind: str
    version: int
    schema: str  # schema 1; no ';' inside comments (statements are split on it)
    # version reached -> what reaches it from the version before: a script split on ';', or a
    # tuple of statements where a statement holds ';' (a trigger)
    migrations: Mapping[int, str | tuple[str, ...]]
    marker_table: str | None  # a table only this kind of file has; None: the schema version alone says
    refuse_hint: str = ""  # what to do instead, appended to the refusal of a file of another kind
    missing_hint: str = ""  # how to make one, when a file that must exist does not
    foreign_keys: bool = False  # enforce the schema's REFERENCES


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


def open_versioned(path: str | Path, spec: SchemaSpec, create: bool = True,
                   check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection (autocommit; use ``immediate_transaction`` for writes) to a file of ``spec``'s
    kind, created (with ``create``) or migrated to ``spec.version``; DataError if it is not one we can use.

    ``check_same_thread=False`` lets threads share the connection in turn (sqlite3 serializes them)."""
    path = Path(path)
    if not create and not path.is_file():
        raise DataError(f"no such {spec.kind}" + (f" ({spec.missing_hint})" if spec.missing_hint else ""), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None,
                               check_same_thread=check_same_thread)
    except sqlite3.DatabaseError as exc:
        raise DataError(f"cannot open as an SQLite {spec.kind} ({exc})", path) from None
    try:
        with lock_errors_named(path):
            _check_kind(conn, path, spec)  # before anything is written, WAL mode included
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if spec.foreign_keys:
                conn.execute("PRAGMA foreign_keys=ON")
            _ensure_schema(conn, path, spec)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DataError(f"not a usable SQLite {spec.kind} ({exc})", path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def close_versioned(conn: sqlite3.Connection, checkpoint: bool = True) -> None:
    """Close; ``checkpoint`` first folds the WAL back into the main file, so the file is one
    self-contained file (TRUNCATE waits for readers: a command's last act, not a web request's)."""
    try:
        if checkpoint:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError:
        pass  # a reader still holds the WAL: it is folded in by a later close
    finally:
        conn.close()


def kind_problem(version: int, tables: set[str], spec: SchemaSpec) -> str | None:
    """Why a file at schema ``version`` holding ``tables`` is not a file of ``spec``'s kind that
    this deepmars can use, or None (an empty new file is fine: it is created)."""
    if not tables and version == 0:
        return None
    hint = f"; {spec.refuse_hint}" if spec.refuse_hint else ""
    if spec.marker_table is not None and spec.marker_table not in tables:
        return f"an SQLite file that is not a deepmars {spec.kind} (no {spec.marker_table} table){hint}"
    if version == 0:
        return f"an SQLite file that is not a deepmars {spec.kind} (no schema version){hint}"
    if version > spec.version:
        return (f"{spec.kind} schema {version} was written by a newer deepmars; this one reads "
                f"schema {spec.version}")
    return None


def user_version_and_tables(conn: sqlite3.Connection) -> tuple[int, set[str]]:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return version, {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _check_kind(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> None:
    problem = kind_problem(*user_version_and_tables(conn), spec)
    if problem is not None:
        raise DataError(problem, path)


def _ensure_schema(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> None:
    """Create a new file, or migrate an older one in place, in one transaction (SQLite DDL is transactional)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == spec.version:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        _check_kind(conn, path, spec)  # again inside the lock: two processes may create or migrate one file at once
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            _execute(conn, spec.schema)
            version = 1
        for target in range(version + 1, spec.version + 1):
            _execute(conn, spec.migrations[target])
        conn.execute(f"PRAGMA user_version={spec.version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")  # a failed migration leaves the file as it was
        raise


def _execute(conn: sqlite3.Connection, statements: str | tuple[str, ...]) -> None:
    # Statement by statement: executescript would commit in the middle of the transaction.
    for statement in filter(str.strip, statements.split(";")) if isinstance(statements, str) else statements:
        conn.execute(statement)
