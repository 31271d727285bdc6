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
  counting threshold;
- derived by triggers, for searching a read-only catalog (``DERIVED_TABLES``): FTS5 text of both
  image tables (schema 3, see ``SEARCH_SCHEMA``) and the count tables of predictions and scenes
  (schema 4, see ``deepmars.catalog.count_tables``).

A new catalog is created as schema 1 and migrated (``MIGRATIONS``, opened as ``CATALOG``), so a new and a migrated
catalog have the same tables with the same column order. ``TABLES`` names every table with its
row type and key: the merge and the tests read it, so a table added here cannot be forgotten there.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepmars.catalog.count_tables import counts_schema
from deepmars.catalog.rows import (
    ErrorRow,
    LandmarkCountRow,
    LandmarkImageRow,
    LandmarkRow,
    PredictionRow,
    RunRow,
    columns,
)
from deepmars.catalog.sqlite_file import SchemaSpec

SCHEMA_VERSION = 4

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

# Schema 2 -> 3: what searching a read-only catalog needs (the Atlas), kept in step by triggers so
# every writer (predict.py, landmarks.py, merge, any SQL) keeps it right without knowing of it.
#
# - ``predictions`` and ``landmark_images`` become rowid tables with an explicit ``id INTEGER
#   PRIMARY KEY`` (last column) and their old key as a UNIQUE constraint: the id is the row key a
#   browser sends (never a path), the keyset tie-breaker, and the FTS5 rowid; an explicit INTEGER
#   PRIMARY KEY survives VACUUM, an implicit rowid may not;
# - ``prediction_text`` / ``scene_text``: FTS5 over file paths, class, source image, metadata and
#   notes, reading their text from the tables themselves (external content: nothing stored twice);
# - ``prediction_facets`` / ``prediction_sol_facets``: row counts per model, class, instrument,
#   confidence step (CONFIDENCE_STEPS per unit) and abstained flag, the second also per SOL_BIN sols
#   (schema 4 replaces both with ``prediction_counts``, exact at any threshold and sol range);
# - indexes for the Atlas's result pages, chosen from EXPLAIN QUERY PLAN (tests/test_atlas_queries.py).
CONFIDENCE_STEPS = 20  # schema 3's confidence grid: 0.05
SOL_BIN = 50  # sols per bin of schema 3's sol facets


def confidence_step(value: str) -> str:
    """SQL for the grid step of a confidence: the largest k with k / CONFIDENCE_STEPS <= value.

    ``CAST(v * 20 AS INTEGER)`` alone can be one off (0.15 * 20 = 2.9999999999999996), so it is
    corrected against the very doubles ``confidence >= k / 20.0`` compares with: a row counted at
    step >= k is exactly a row the result query keeps at min_confidence k / 20.
    """
    k, x = CONFIDENCE_STEPS, f"CAST({value} * {CONFIDENCE_STEPS} AS INTEGER)"
    return f"({x} + ({value} >= ({x} + 1) / {k}.0) - ({value} < {x} / {k}.0))"


_PREDICTION_COLUMNS = """
    model_id        TEXT NOT NULL,
    path            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    file_mtime_ns   INTEGER NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    sol             INTEGER,
    instrument      TEXT,
    source_image    TEXT,
    metadata        TEXT NOT NULL,
    predicted_class TEXT NOT NULL,
    confidence      REAL NOT NULL,
    top_k           TEXT NOT NULL,
    abstained       INTEGER NOT NULL,
    classified_at   TEXT NOT NULL,
    id              INTEGER PRIMARY KEY,  -- row key of this file (not merged: each file numbers its own)
    UNIQUE (model_id, path)"""

_SCENE_COLUMNS = """
    model_id        TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    source_image    TEXT NOT NULL,
    path            TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    file_mtime_ns   INTEGER NOT NULL,
    source_width    INTEGER NOT NULL,
    source_height   INTEGER NOT NULL,
    working_width   INTEGER NOT NULL,
    working_height  INTEGER NOT NULL,
    landmarks       INTEGER NOT NULL,
    notes           TEXT NOT NULL,
    detector        TEXT NOT NULL,
    overlay         TEXT,
    classified_at   TEXT NOT NULL,
    id              INTEGER PRIMARY KEY,
    UNIQUE (model_id, sha256)"""

_PREDICTION_TEXT = ("path", "predicted_class", "source_image", "instrument", "metadata")
_SCENE_TEXT = ("source_image", "path", "notes")
_FACETS = ("prediction_facets", "prediction_sol_facets")


def _fts_write(table: str, columns: tuple[str, ...], row: str, delete: bool) -> str:
    cols = ", ".join(columns)
    values = ", ".join(f"{row}.{c}" for c in columns)
    if delete:
        return f"INSERT INTO {table}({table}, rowid, {cols}) VALUES ('delete', {row}.id, {values})"
    return f"INSERT INTO {table}(rowid, {cols}) VALUES ({row}.id, {values})"


def _facet_key(row: str, with_sol: bool) -> list[tuple[str, str]]:
    key = [("model_id", f"{row}.model_id")]
    if with_sol:
        key.append(("sol_bin", f"{row}.sol / {SOL_BIN}"))
    return key + [("predicted_class", f"{row}.predicted_class"), ("instrument", f"IFNULL({row}.instrument, '')"),
                  ("confidence_step", confidence_step(f"{row}.confidence")), ("abstained", f"{row}.abstained")]


def _facet_add(table: str, row: str) -> str:
    key = _facet_key(row, table == "prediction_sol_facets")
    where = f" WHERE {row}.sol IS NOT NULL" if table == "prediction_sol_facets" else " WHERE true"
    return (f"INSERT INTO {table} ({', '.join(k for k, _ in key)}, n) SELECT {', '.join(v for _, v in key)}, 1"
            f"{where} ON CONFLICT ({', '.join(k for k, _ in key)}) DO UPDATE SET n = n + 1")


def _facet_remove(table: str, row: str) -> list[str]:
    match = " AND ".join(f"{k} = {v}" for k, v in _facet_key(row, table == "prediction_sol_facets"))
    return [f"UPDATE {table} SET n = n - 1 WHERE {match}", f"DELETE FROM {table} WHERE {match} AND n <= 0"]


def _triggers(table: str, fts: str, text: tuple[str, ...], facets: bool) -> list[str]:
    add = [_fts_write(fts, text, "NEW", False)] + ([_facet_add(t, "NEW") for t in _FACETS] if facets else [])
    remove = [_fts_write(fts, text, "OLD", True)] + (
        [s for t in _FACETS for s in _facet_remove(t, "OLD")] if facets else [])
    body = {"insert": add, "delete": remove, "update": remove + add}
    return [f"CREATE TRIGGER {table}_{event}_search AFTER {event.upper()} ON {table} BEGIN\n    "
            + ";\n    ".join(statements) + ";\nEND" for event, statements in body.items()]


def _rebuilt(table: str, columns: str, indexes: list[str]) -> list[str]:
    """A table re-created with new columns: the old one renamed aside (copied over and dropped later)."""
    return [f"ALTER TABLE {table} RENAME TO {table}_v2", *[f"DROP INDEX {name}" for name in indexes],
            f"CREATE TABLE {table} ({columns}\n)"]


SEARCH_SCHEMA: tuple[str, ...] = (
    *_rebuilt("predictions", _PREDICTION_COLUMNS, ["predictions_by_sha", "predictions_by_class"]),
    "CREATE INDEX predictions_by_sha ON predictions (model_id, sha256)",
    # result pages: one class, best first; keyset on (confidence, id)
    "CREATE INDEX predictions_by_class ON predictions (model_id, predicted_class, confidence)",
    # result pages without a class filter, and every model at once
    "CREATE INDEX predictions_by_confidence ON predictions (model_id, confidence)",
    # sol ranges (exact counts at the edges of the histogram bins) and HiRISE crops by source image
    "CREATE INDEX predictions_by_sol ON predictions "
    "(model_id, sol, predicted_class, instrument, confidence, abstained)",
    "CREATE INDEX predictions_by_source ON predictions (model_id, source_image, confidence) "
    "WHERE source_image IS NOT NULL",
    f"CREATE VIRTUAL TABLE prediction_text USING fts5({', '.join(_PREDICTION_TEXT)}, content='predictions', "
    "content_rowid='id')",
    "CREATE TABLE prediction_facets (model_id TEXT NOT NULL, predicted_class TEXT NOT NULL, instrument TEXT NOT NULL, "
    "confidence_step INTEGER NOT NULL, abstained INTEGER NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (model_id, predicted_class, instrument, confidence_step, abstained)) WITHOUT ROWID",
    "CREATE TABLE prediction_sol_facets (model_id TEXT NOT NULL, sol_bin INTEGER NOT NULL, "
    "predicted_class TEXT NOT NULL, instrument TEXT NOT NULL, confidence_step INTEGER NOT NULL, "
    "abstained INTEGER NOT NULL, n INTEGER NOT NULL, "
    "PRIMARY KEY (model_id, sol_bin, predicted_class, instrument, confidence_step, abstained)) WITHOUT ROWID",
    *_triggers("predictions", "prediction_text", _PREDICTION_TEXT, True),
    "INSERT INTO predictions SELECT *, NULL FROM predictions_v2 ORDER BY model_id, path",
    "DROP TABLE predictions_v2",
    *_rebuilt("landmark_images", _SCENE_COLUMNS, ["landmark_images_by_source", "landmark_images_by_path"]),
    "CREATE UNIQUE INDEX landmark_images_by_source ON landmark_images (model_id, source_image)",
    "CREATE INDEX landmark_images_by_path ON landmark_images (model_id, path)",
    f"CREATE VIRTUAL TABLE scene_text USING fts5({', '.join(_SCENE_TEXT)}, content='landmark_images', "
    "content_rowid='id')",
    *_triggers("landmark_images", "scene_text", _SCENE_TEXT, False),
    "INSERT INTO landmark_images SELECT *, NULL FROM landmark_images_v2 ORDER BY model_id, source_image",
    "DROP TABLE landmark_images_v2",
    # landmarks of a class at a confidence, per image (scene facets and minimum-count filters)
    "CREATE INDEX landmark_counts_by_image ON landmark_counts (model_id, count_confidence, sha256, class, n)",
)

# Schema 3 -> 4: exact counts at any confidence threshold and sol range, and scene counts by row id
# (deepmars.catalog.count_tables); the predictions triggers keep their FTS statements.
COUNTS_SCHEMA: tuple[str, ...] = counts_schema({
    "insert": [_fts_write("prediction_text", _PREDICTION_TEXT, "NEW", False)],
    "delete": [_fts_write("prediction_text", _PREDICTION_TEXT, "OLD", True)],
    "update": [_fts_write("prediction_text", _PREDICTION_TEXT, "OLD", True),
               _fts_write("prediction_text", _PREDICTION_TEXT, "NEW", False)],
})

# Version reached -> the statements that reach it from the version before (a script split on ';',
# or a tuple of statements where a statement holds ';', as a trigger does).
MIGRATIONS: dict[int, str | tuple[str, ...]] = {2: LANDMARK_SCHEMA, 3: SEARCH_SCHEMA, 4: COUNTS_SCHEMA}

# What opening a catalog file creates, migrates or refuses. Catalogs predate marker tables: a
# schema version on a file with tables is what makes it a catalog.
CATALOG = SchemaSpec(
    kind="catalog", version=SCHEMA_VERSION, schema=SCHEMA, migrations=MIGRATIONS, marker_table=None,
    refuse_hint="choose another catalog path",
    missing_hint="run `python predict.py input=... model=...` or `python landmarks.py classify input=... "
                 "model=...` first, or set catalog=...")


@dataclass(frozen=True)
class Table:
    """A catalog table: its row type (None for ``models``, read as ModelInfo), key and time columns."""

    name: str
    row_type: type | None
    key: tuple[str, ...]
    time_column: str | None = None
    local: tuple[str, ...] = ()  # columns numbered by each file (row ids): never copied between catalogs

    @property
    def columns(self) -> tuple[str, ...]:
        return columns(self.row_type) if self.row_type is not None else MODEL_COLUMNS

    @property
    def shared_columns(self) -> tuple[str, ...]:
        """The columns that mean the same in every catalog (what a merge copies and tests compare)."""
        return tuple(c for c in self.columns if c not in self.local)


MODEL_COLUMNS = ("model_id", "class_names", "dataset", "temperature", "preprocess", "model_cfg")

# Every table of SCHEMA_VERSION, in dependency order (a landmark's image before the landmark).
TABLES = {t.name: t for t in (
    Table("models", None, ("model_id",)),
    Table("runs", RunRow, ("run_id",), "started_at"),
    Table("predictions", PredictionRow, ("model_id", "path"), "classified_at", ("id",)),
    Table("errors", ErrorRow, ("model_id", "path"), "failed_at"),
    Table("landmark_images", LandmarkImageRow, ("model_id", "sha256"), "classified_at", ("id",)),
    Table("landmarks", LandmarkRow, ("model_id", "sha256", "landmark_id"), "classified_at"),
    Table("landmark_counts", LandmarkCountRow, ("model_id", "sha256", "count_confidence", "class")),
)}
# Tables computed from the ones above by triggers (search text and counts) -> what they derive from:
# a merge or any other write keeps them right by writing those.
DERIVED_TABLES = {"prediction_text": "predictions", "scene_text": "landmark_images",
                  "prediction_counts": "predictions", "scene_counts": "landmark_counts",
                  "scene_class_pairs": "scene_counts"}
TIME_COLUMNS = {t.name: t.time_column for t in TABLES.values() if t.time_column and t.name != "runs"}
