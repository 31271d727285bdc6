"""The catalog's tables: SQL schema, migrations between versions, and what identifies each row.

One SQLite file holds whole-image predictions (predict.py) and per-landmark classes of large
orbital images (landmarks.py classify):

- ``models``: each model that wrote rows, with its classes, calibration and preprocessing;
- ``predictions`` and ``errors``: both keyed by (model_id, path); a path is in at most one of
  them for a model;
- ``runs``: each invocation (started, finished, counts); an interrupted run keeps its row with no
  ``finished_at``; ``command`` says which tool ran;
- ``landmark_images``: one row per (model, source image content) detected and classified, with
  zero or more ``landmarks`` rows and one ``landmark_counts`` row per class of the model at each
  counting threshold.

A new catalog is created as schema 1 and migrated (``MIGRATIONS``), so a new and a migrated
catalog have the same tables with the same column order. ``TABLES`` names every table with its
row type and key: the merge and the tests read it, so a table added here cannot be forgotten there.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepmars.catalog.rows import (ErrorRow, LandmarkCountRow, LandmarkImageRow, LandmarkRow, PredictionRow,
                                   RunRow, columns)

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


@dataclass(frozen=True)
class Table:
    """A catalog table: its row type (None for ``models``, read as ModelInfo), key and time columns."""

    name: str
    row_type: type | None
    key: tuple[str, ...]
    time_column: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return columns(self.row_type) if self.row_type is not None else MODEL_COLUMNS


MODEL_COLUMNS = ("model_id", "class_names", "dataset", "temperature", "preprocess", "model_cfg")

# Every table of SCHEMA_VERSION, in dependency order (a landmark's image before the landmark).
TABLES = {t.name: t for t in (
    Table("models", None, ("model_id",)),
    Table("runs", RunRow, ("run_id",), "started_at"),
    Table("predictions", PredictionRow, ("model_id", "path"), "classified_at"),
    Table("errors", ErrorRow, ("model_id", "path"), "failed_at"),
    Table("landmark_images", LandmarkImageRow, ("model_id", "sha256"), "classified_at"),
    Table("landmarks", LandmarkRow, ("model_id", "sha256", "landmark_id"), "classified_at"),
    Table("landmark_counts", LandmarkCountRow, ("model_id", "sha256", "count_confidence", "class")),
)}
TIME_COLUMNS = {t.name: t.time_column for t in TABLES.values() if t.time_column and t.name != "runs"}
