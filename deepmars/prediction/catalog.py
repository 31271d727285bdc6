"""The prediction catalog: one SQLite file, versioned schema, crash-safe batched writes.

Keys make a re-run after a crash converge to the uninterrupted result:
- ``predictions`` and ``errors`` are both keyed by (model_id, path). A path is in at most one of
  them for a model: writing a prediction deletes the path's error row and vice versa, in the same
  transaction. Re-processing a path replaces its row, so nothing is ever duplicated.
- Every batch is one ``BEGIN IMMEDIATE .. COMMIT`` transaction in WAL mode: a process killed at any
  moment leaves either the whole batch or none of it (SQLite rolls a half-written one back on the
  next open). With ``synchronous=NORMAL`` a committed batch survives a killed process.
- ``runs`` logs each invocation (started, finished, counts); an interrupted run keeps its row with
  no ``finished_at``, which is the only trace a crash leaves.

The file stays readable by any SQLite client; see ``SCHEMA`` for the columns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from deepmars.errors import DataError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE models (
    model_id     TEXT PRIMARY KEY,      -- runs:/<run_id>, or file:<path>#<sha256[:12]>
    class_names  TEXT NOT NULL,         -- JSON list, index = network output
    dataset      TEXT,                  -- data set the model was trained on (its metadata rule)
    temperature  REAL NOT NULL,         -- calibration: confidence = softmax(logits / temperature)
    preprocess   TEXT NOT NULL,         -- JSON
    model_cfg    TEXT NOT NULL          -- JSON
);
CREATE TABLE predictions (
    model_id        TEXT NOT NULL,
    path            TEXT NOT NULL,      -- absolute path when classified
    sha256          TEXT NOT NULL,      -- content hash: a renamed copy reuses the prediction
    file_size       INTEGER NOT NULL,
    file_mtime_ns   INTEGER NOT NULL,   -- with file_size: unchanged files are skipped unread
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    sol             INTEGER,            -- MSL
    instrument      TEXT,               -- MSL: ML, MR, MH
    source_image    TEXT,               -- HiRISE
    metadata        TEXT NOT NULL,      -- JSON: any other fields the data set's name rule defines
    predicted_class TEXT NOT NULL,
    confidence      REAL NOT NULL,      -- calibrated probability of predicted_class
    top_k           TEXT NOT NULL,      -- JSON [{"class": name, "p": probability}, ...]
    abstained       INTEGER NOT NULL,   -- 1 when confidence < the run's min_confidence
    classified_at   TEXT NOT NULL,      -- UTC, ISO 8601
    PRIMARY KEY (model_id, path)
) WITHOUT ROWID;
CREATE INDEX predictions_by_sha ON predictions (model_id, sha256);
CREATE INDEX predictions_by_class ON predictions (model_id, predicted_class, confidence);
CREATE TABLE errors (
    model_id      TEXT NOT NULL,
    path          TEXT NOT NULL,
    sha256        TEXT,                 -- NULL when the file could not be read at all
    file_size     INTEGER,
    file_mtime_ns INTEGER,
    reason        TEXT NOT NULL,
    failed_at     TEXT NOT NULL,
    PRIMARY KEY (model_id, path)
) WITHOUT ROWID;
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    model_id      TEXT NOT NULL,
    input         TEXT NOT NULL,
    shard         TEXT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,                 -- NULL: the run was interrupted
    classified    INTEGER,
    reused        INTEGER,
    skipped       INTEGER,
    failed        INTEGER,
    exit_code     INTEGER,
    config        TEXT NOT NULL         -- JSON of the resolved predict config
);
"""

PREDICTION_COLUMNS = (
    "model_id", "path", "sha256", "file_size", "file_mtime_ns", "width", "height", "sol",
    "instrument", "source_image", "metadata", "predicted_class", "confidence", "top_k",
    "abstained", "classified_at")
ERROR_COLUMNS = ("model_id", "path", "sha256", "file_size", "file_mtime_ns", "reason", "failed_at")
TIME_COLUMNS = {"predictions": "classified_at", "errors": "failed_at"}

_INSERT_PREDICTION = (f"INSERT OR REPLACE INTO predictions ({', '.join(PREDICTION_COLUMNS)}) "
                      f"VALUES ({', '.join('?' * len(PREDICTION_COLUMNS))})")
_INSERT_ERROR = (f"INSERT OR REPLACE INTO errors ({', '.join(ERROR_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(ERROR_COLUMNS))})")
# SQLite allows 32766 host parameters; lookups go in blocks well below that.
LOOKUP_BLOCK = 900


def utc_now() -> str:
    """Timestamps as UTC ISO 8601 with microseconds: sortable as text, comparable across shards."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ModelInfo:
    """What the catalog records about a model, so queries can name its classes."""

    model_id: str
    class_names: list[str]
    dataset: str | None
    temperature: float
    preprocess: dict
    model_cfg: dict


@dataclass(frozen=True)
class KnownPrediction:
    """A stored prediction reused for identical content under another path."""

    width: int
    height: int
    predicted_class: str
    confidence: float
    top_k: str


class Catalog:
    """One open catalog file. Not shared between processes; workers use ``open_reader``."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, create: bool = True) -> "Catalog":
        """Open (and with ``create``, create) a catalog; DataError if it is not one we can use."""
        path = Path(path)
        if not create and not path.is_file():
            raise DataError("no such catalog (run `python predict.py input=... model=...` first, "
                            "or set catalog=...)", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            _ensure_schema(conn, path)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"not a usable SQLite catalog ({exc})", path) from None
        return cls(conn, path)

    def close(self) -> None:
        """Fold the WAL back into the main file so the catalog is one self-contained file."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ models
    def register_model(self, info: ModelInfo) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?, ?, ?)",
            (info.model_id, json.dumps(info.class_names), info.dataset, float(info.temperature),
             json.dumps(info.preprocess, sort_keys=True), json.dumps(info.model_cfg, sort_keys=True)))

    def models(self) -> list[ModelInfo]:
        rows = self.conn.execute("SELECT * FROM models ORDER BY model_id").fetchall()
        return [ModelInfo(r[0], json.loads(r[1]), r[2], r[3], json.loads(r[4]), json.loads(r[5]))
                for r in rows]

    # -------------------------------------------------------------------- runs
    def start_run(self, model_id: str, input_spec: str, shard: str | None, config: dict) -> str:
        run_id = uuid.uuid4().hex
        self.conn.execute(
            "INSERT INTO runs (run_id, model_id, input, shard, started_at, config) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, model_id, input_spec, shard, utc_now(), json.dumps(config, sort_keys=True, default=str)))
        return run_id

    def finish_run(self, run_id: str, classified: int, reused: int, skipped: int, failed: int,
                   exit_code: int) -> None:
        self.conn.execute(
            "UPDATE runs SET finished_at=?, classified=?, reused=?, skipped=?, failed=?, exit_code=? "
            "WHERE run_id=?", (utc_now(), classified, reused, skipped, failed, exit_code, run_id))

    # ------------------------------------------------------- incremental checks
    def unchanged_paths(self, model_id: str, stats: Sequence[tuple[str, int, int]]) -> set[str]:
        """Paths of ``stats`` (path, size, mtime_ns) already classified by this model as they are now."""
        done: set[str] = set()
        for start in range(0, len(stats), LOOKUP_BLOCK):
            block = stats[start:start + LOOKUP_BLOCK]
            wanted = {p: (s, m) for p, s, m in block}
            rows = self.conn.execute(
                f"SELECT path, file_size, file_mtime_ns FROM predictions WHERE model_id=? "
                f"AND path IN ({', '.join('?' * len(wanted))})", (model_id, *wanted))
            done.update(p for p, s, m in rows if wanted[p] == (s, m))
        return done

    def known_prediction(self, model_id: str, sha256: str) -> KnownPrediction | None:
        """A stored prediction for this content, if this model has classified it under any path."""
        row = self.conn.execute(
            "SELECT width, height, predicted_class, confidence, top_k FROM predictions "
            "WHERE model_id=? AND sha256=? ORDER BY path LIMIT 1", (model_id, sha256)).fetchone()
        return None if row is None else KnownPrediction(*row)

    # ------------------------------------------------------------------ writes
    def write_batch(self, predictions: Sequence[tuple], errors: Sequence[tuple]) -> None:
        """Write one batch atomically; rows follow PREDICTION_COLUMNS / ERROR_COLUMNS."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if predictions:
                conn.executemany(_INSERT_PREDICTION, predictions)
                conn.executemany("DELETE FROM errors WHERE model_id=? AND path=?",
                                 [(r[0], r[1]) for r in predictions])
            if errors:
                conn.executemany(_INSERT_ERROR, errors)
                conn.executemany("DELETE FROM predictions WHERE model_id=? AND path=?",
                                 [(r[0], r[1]) for r in errors])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------- reads
    def rows(self, table: str, exclude: Iterable[str] = ()) -> list[tuple]:
        """All rows of ``table`` minus some columns, sorted: for comparing catalogs in tests."""
        cols = [c for c in self.columns(table) if c not in set(exclude)]
        return self.conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2").fetchall()

    def columns(self, table: str) -> list[str]:
        return [name for name, _ in self.column_types(table)]

    def column_types(self, table: str) -> list[tuple[str, str]]:
        """(name, declared SQLite type) of each column, in table order."""
        return [(r[1], r[2]) for r in self.conn.execute(f"PRAGMA table_info({table})")]


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise DataError(f"catalog schema {version} was written by a newer deepmars; this one reads "
                        f"schema {SCHEMA_VERSION}", path)
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if tables:
        raise DataError("an SQLite file that is not a deepmars catalog (no schema version); "
                        "choose another catalog path", path)
    conn.execute("BEGIN IMMEDIATE")
    # Re-check inside the write lock: two shards may create the same file at once.
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        conn.execute("COMMIT")
        return
    # Statement by statement (executescript would commit early); SCHEMA has no ';' in comments.
    for statement in filter(str.strip, SCHEMA.split(";")):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    conn.execute("COMMIT")


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for worker processes (WAL lets them read while the main one writes)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
