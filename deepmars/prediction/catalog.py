"""The prediction catalog: one SQLite file, versioned schema, crash-safe batched writes.

Keys make a re-run after a crash converge to the uninterrupted result:
- ``predictions`` and ``errors`` are both keyed by (model_id, path). A path is in at most one of
  them for a model: writing a prediction deletes the path's error row and vice versa, in the same
  transaction. Re-processing a path replaces its row, so nothing is ever duplicated.
- Every batch is one ``BEGIN IMMEDIATE .. COMMIT`` transaction in WAL mode: a process killed at any
  moment leaves either the whole batch or none of it (SQLite rolls a half-written one back on the
  next open). With ``synchronous=NORMAL`` a committed batch survives a killed process.
- ``runs`` logs each invocation (started, finished, counts); an interrupted run keeps its row with
  no ``finished_at``, which is the only trace a crash leaves. ``command`` says which tool ran.

Schema 2 adds the landmark tables of ``python landmarks.py classify`` (issue 7), so one catalog
holds both whole-image predictions and per-landmark classes of large orbital images:
- ``landmark_images``: one row per (model, source image content) that was detected and classified,
  with zero or more ``landmarks`` rows (box, class, calibrated confidence) and one
  ``landmark_counts`` row per class of the model at the run's ``count_confidence``;
- an image's rows, its counts and the removal of its path's error row are one transaction
  (``deepmars/landmarks/store.py``), with the same crash guarantees as a predict batch.
A schema-1 catalog is migrated in place when opened (``MIGRATIONS``): its tables and rows are kept
as they are, the new tables are added, and ``runs`` gets ``command`` ('predict' for old rows).

The file stays readable by any SQLite client; see ``SCHEMA`` and ``MIGRATIONS`` for the columns.
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

SCHEMA_VERSION = 2

# Schema 1, as predict.py first wrote it. A new catalog is created as schema 1 and migrated, so a
# new and a migrated catalog have the same tables with the same column order.
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

# Schema 1 -> 2: the landmark tables. No ';' inside comments (statements are split on it).
LANDMARK_SCHEMA = """
ALTER TABLE runs ADD COLUMN command TEXT NOT NULL DEFAULT 'predict';  -- predict or landmarks
CREATE TABLE landmark_images (
    model_id        TEXT NOT NULL,
    sha256          TEXT NOT NULL,      -- content hash of the source image: its identity
    source_image    TEXT NOT NULL,      -- product id: file name up to its first dot
    path            TEXT NOT NULL,      -- absolute path it was read from
    file_size       INTEGER NOT NULL,
    file_mtime_ns   INTEGER NOT NULL,   -- with path and file_size: unchanged files are skipped unread
    source_width    INTEGER NOT NULL,
    source_height   INTEGER NOT NULL,
    working_width   INTEGER NOT NULL,   -- the frame landmarks were detected and cropped in
    working_height  INTEGER NOT NULL,
    landmarks       INTEGER NOT NULL,   -- its rows in landmarks
    notes           TEXT NOT NULL,      -- why there are no or fewer landmarks, else empty
    detector        TEXT NOT NULL,      -- JSON of the read/detect/crops settings: a change redoes it
    overlay         TEXT,               -- overlay PNG relative to the catalog folder, NULL if none
    classified_at   TEXT NOT NULL,
    PRIMARY KEY (model_id, sha256)
) WITHOUT ROWID;
CREATE UNIQUE INDEX landmark_images_by_source ON landmark_images (model_id, source_image);
CREATE INDEX landmark_images_by_path ON landmark_images (model_id, path);
CREATE TABLE landmarks (
    model_id        TEXT NOT NULL,
    sha256          TEXT NOT NULL,      -- the landmark_images row it belongs to
    landmark_id     INTEGER NOT NULL,   -- 1-based, the NNNN of the crop name
    source_image    TEXT NOT NULL,
    crop_file       TEXT,               -- <source_image>-NNNN.jpg when crops were written, else NULL
    x               INTEGER NOT NULL,   -- box in working pixels
    y               INTEGER NOT NULL,
    w               INTEGER NOT NULL,
    h               INTEGER NOT NULL,
    src_x           INTEGER NOT NULL,   -- the same box in source (full-resolution) pixels
    src_y           INTEGER NOT NULL,
    src_w           INTEGER NOT NULL,
    src_h           INTEGER NOT NULL,
    area            INTEGER NOT NULL,   -- working pixels
    salience        REAL NOT NULL,      -- mean salience over the region
    predicted_class TEXT NOT NULL,
    confidence      REAL NOT NULL,      -- calibrated probability of predicted_class
    top_k           TEXT NOT NULL,      -- JSON [{"class": name, "p": probability}, ...]
    abstained       INTEGER NOT NULL,   -- 1 when confidence < the run's min_confidence
    classified_at   TEXT NOT NULL,
    PRIMARY KEY (model_id, sha256, landmark_id)
) WITHOUT ROWID;
CREATE INDEX landmarks_by_class ON landmarks (model_id, predicted_class, confidence);
CREATE TABLE landmark_counts (
    model_id         TEXT NOT NULL,
    sha256           TEXT NOT NULL,     -- the landmark_images row
    count_confidence REAL NOT NULL,     -- posterior threshold of the count
    class            TEXT NOT NULL,     -- every class of the model, so zero counts are rows too
    source_image     TEXT NOT NULL,
    n                INTEGER NOT NULL,  -- landmarks of class with confidence >= count_confidence
    PRIMARY KEY (model_id, sha256, count_confidence, class)
) WITHOUT ROWID;
CREATE INDEX landmark_counts_by_class ON landmark_counts (model_id, class, count_confidence, n)
"""

# Version reached -> the statements that reach it from the version before.
MIGRATIONS = {2: LANDMARK_SCHEMA}

PREDICTION_COLUMNS = (
    "model_id", "path", "sha256", "file_size", "file_mtime_ns", "width", "height", "sol",
    "instrument", "source_image", "metadata", "predicted_class", "confidence", "top_k",
    "abstained", "classified_at")
ERROR_COLUMNS = ("model_id", "path", "sha256", "file_size", "file_mtime_ns", "reason", "failed_at")
LANDMARK_IMAGE_COLUMNS = (
    "model_id", "sha256", "source_image", "path", "file_size", "file_mtime_ns", "source_width", "source_height",
    "working_width", "working_height", "landmarks", "notes", "detector", "overlay", "classified_at")
LANDMARK_COLUMNS = (
    "model_id", "sha256", "landmark_id", "source_image", "crop_file", "x", "y", "w", "h", "src_x", "src_y",
    "src_w", "src_h", "area", "salience", "predicted_class", "confidence", "top_k", "abstained", "classified_at")
LANDMARK_COUNT_COLUMNS = ("model_id", "sha256", "count_confidence", "class", "source_image", "n")
TIME_COLUMNS = {"predictions": "classified_at", "errors": "failed_at", "landmark_images": "classified_at",
                "landmarks": "classified_at"}

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
            raise DataError("no such catalog (run `python predict.py input=... model=...` or `python "
                            "landmarks.py classify input=... model=...` first, or set catalog=...)", path)
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
    def start_run(self, model_id: str, input_spec: str, shard: str | None, config: dict,
                  command: str = "predict") -> str:
        """Log a run as started; ``command`` is the tool (predict or landmarks) that writes its rows."""
        run_id = uuid.uuid4().hex
        self.conn.execute(
            "INSERT INTO runs (run_id, model_id, input, shard, started_at, config, command) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, model_id, input_spec, shard, utc_now(), json.dumps(config, sort_keys=True, default=str),
             command))
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
    """Create a new catalog, or migrate an older one in place; refuse what we cannot read."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise DataError(f"catalog schema {version} was written by a newer deepmars; this one reads "
                        f"schema {SCHEMA_VERSION}", path)
    tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if version == 0 and tables:
        raise DataError("an SQLite file that is not a deepmars catalog (no schema version); "
                        "choose another catalog path", path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the write lock: two processes may create or migrate the same file at once.
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
        _execute_script(conn, MIGRATIONS[target])
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    # Statement by statement (executescript would commit early); the scripts have no ';' in comments.
    for statement in filter(str.strip, script.split(";")):
        conn.execute(statement)


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for worker processes (WAL lets them read while the main one writes)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
