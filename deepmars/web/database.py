"""The catalog opened read-only for web requests: checked once at start, pooled per request.

Read-only at the SQLite level (a ``mode=ro`` URI), so no request can change the catalog, while
predict.py or landmarks.py may keep writing it (WAL: readers see the last commit). What the search
needs (FTS5, facet tables, indexes) is part of the catalog schema itself; a catalog of an older
schema cannot gain them through a read-only handle, so it is refused with the command that
upgrades it. Which files are catalogs at all (not another program's, not a newer deepmars's) is
decided by the same ``kind_problem`` as the writer's ``open_versioned``; the opening itself is
not shared, as that one creates, switches to WAL and migrates, all of which a reader must not do.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from fastapi import Request

from deepmars.catalog import SCHEMA_VERSION
from deepmars.catalog.schema import CATALOG
from deepmars.catalog.sqlite_file import kind_problem, user_version_and_tables
from deepmars.errors import DataError


class CatalogUnavailable(DataError):
    """The catalog cannot be served: missing, not a catalog, locked, or of another schema."""


def connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def check_catalog(path: Path, timeout_s: float, upgrade_hint: str) -> None:
    """CatalogUnavailable with what to do, unless ``path`` is a catalog of this schema we can read."""
    if not path.is_file():
        raise CatalogUnavailable("no such catalog (build one with `python predict.py input=... model=...` or "
                                 "`python landmarks.py classify input=... model=...`, or set catalog=...)", path)
    try:
        conn = connect_read_only(path, timeout_s)
    except sqlite3.Error as exc:
        raise CatalogUnavailable(f"cannot open it read-only ({exc})", path) from None
    try:
        version, tables = user_version_and_tables(conn)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise CatalogUnavailable(f"the catalog is locked by another process (waited {timeout_s:g} s); "
                                     "try again when it has finished", path) from None
        raise CatalogUnavailable(f"not a readable SQLite catalog ({exc})", path) from None
    except sqlite3.DatabaseError as exc:
        raise CatalogUnavailable(f"not an SQLite catalog ({exc})", path) from None
    finally:
        conn.close()
    problem = kind_problem(version, tables, CATALOG)  # what the writer refuses, the Atlas refuses too
    if problem is not None:
        raise CatalogUnavailable(problem, path)
    if version == 0:
        raise CatalogUnavailable("an empty file, not a catalog", path)
    if version < SCHEMA_VERSION:
        raise CatalogUnavailable(f"catalog schema {version} predates the search tables (schema {SCHEMA_VERSION}); "
                                 f"upgrade it once, in place (it stays a valid catalog): {upgrade_hint}", path)


class CatalogReader:
    """A small pool of read-only connections (sqlite3 releases the GIL while a query runs)."""

    def __init__(self, path: Path, size: int, timeout_s: float):
        self.path = path
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._connections = [connect_read_only(path, timeout_s) for _ in range(max(1, size))]
        for conn in self._connections:
            self._pool.put(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._pool.get()
        try:
            yield conn
        finally:
            if conn.in_transaction:  # a streamed export stopped half-way
                conn.rollback()
            self._pool.put(conn)

    def close(self) -> None:
        for conn in self._connections:
            conn.close()


def read_db(request: Request) -> Iterator[sqlite3.Connection]:
    """FastAPI dependency: a read-only catalog connection for the length of one request."""
    with request.app.state.catalog.connection() as conn:
        yield conn
