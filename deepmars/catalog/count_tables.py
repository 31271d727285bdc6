"""The count tables of schema 4: what the Atlas's counts read instead of the rows, kept exact by triggers.

``prediction_counts``: rows of ``predictions`` per model, class, instrument and abstained flag, at four
sol resolutions (``sols``): 0 = every row (with or without a sol), 1 = per sol, and bins of 10 and
50 sols (rows with a sol >= 0; a negative sol, should one occur, is counted per sol only). Each row
holds ``n`` (its rows) and one cumulative column per value of CONFIDENCE_GRID (``n_ge_0_93``: its
rows with confidence >= 0.93). So:

- a confidence threshold on the grid is one column, whatever the threshold (no sum over steps);
  any other threshold t is the column of the next grid value above it plus the rows between t
  and that value, counted from ``predictions`` (a thin slice): every count is exact;
- any sol range is a few index ranges: whole 50-sol bins, then 10-sol bins, then single sols at
  its ends (at most 5 ranges, a few thousand rows at 3.7 M images);
- an insert, delete or update of a prediction is one upsert of 4 rows (one per resolution).

``scene_counts``: ``landmark_counts`` keyed by the scene's row id (``landmark_images.id``) with the
scene's source image and landmark total, so "scenes with >= n of a class" is one index range that
also orders and pages them. ``scene_class_pairs``: per count confidence, model, class and count n,
how many scenes hold exactly n of the class and at least one of ``with_class`` (``with_class =
class``: how many scenes hold exactly n): the class facet of a one-class filter, the totals and
the sliders' tops are a few dozen rows whatever the number of scenes.

Every writer (predict.py, landmarks.py, merge, any SQL) keeps them right without knowing of them;
a schema-3 catalog gains them, filled from its rows, in ``COUNTS_SCHEMA`` (migration to 4).
Statements hold no ';' except between the statements of a trigger (they are run one by one).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

# Multiples of 0.05 (the slider's steps), and finer where calibrated confidences crowd: 0.01 above
# 0.9, 0.001 above 0.99, 0.0001 above 0.999. Each value is a column every write updates: a finer
# grid costs writes in proportion (46 columns: about half of what 118, every 0.01, cost).
CONFIDENCE_GRID: tuple[Fraction, ...] = tuple(sorted(
    {Fraction(k, 20) for k in range(1, 21)} | {Fraction(90 + k, 100) for k in range(1, 10)}
    | {Fraction(990 + k, 1000) for k in range(1, 10)} | {Fraction(9990 + k, 10000) for k in range(1, 10)}))
GRID_VALUES: tuple[float, ...] = tuple(float(t) for t in CONFIDENCE_GRID)  # as the API's floats compare
SOL_LEVELS = (50, 10, 1)  # sols per bin of prediction_counts, widest first (0: every row in one bin)
SOL_BIN = SOL_LEVELS[0]  # the sol histogram's bin


def count_column(threshold: Fraction) -> str:
    """The column counting rows with confidence >= ``threshold`` (0.93 -> n_ge_0_93)."""
    text = str(Decimal(threshold.numerator) / Decimal(threshold.denominator))
    return "n_ge_" + text.replace(".", "_")


COUNT_COLUMNS = tuple(count_column(t) for t in CONFIDENCE_GRID)
_KEY = ("sols", "sol_bin", "model_id", "predicted_class", "instrument", "abstained")


def _at_least(threshold: Fraction, value: str) -> str:
    # the double k / d (SQLite's division), the very double the API's float for that decimal is
    return f"({value} >= {threshold.numerator} / {threshold.denominator}.0)"


def _levels(row: str) -> str:
    """(sols, sol_bin) of each level a row counts in: every row at 0, a row with a sol at 1, and one
    with a sol >= 0 in the wider bins too (SQLite's division truncates: -3 / 50 would be bin 0)."""
    bins = " UNION ALL ".join(f"SELECT {w}, {row}.sol / {w} WHERE {row}.sol >= 0" for w in SOL_LEVELS[:-1])
    return f"SELECT 0 AS sols, 0 AS sol_bin UNION ALL SELECT 1, {row}.sol WHERE {row}.sol IS NOT NULL UNION ALL {bins}"


def _counts_delta(row: str, sign: int) -> str:
    """Add (sign 1) or take away (sign -1) the row ``row`` (NEW or OLD) at every level: one upsert."""
    minus = "-" if sign < 0 else ""
    values = ", ".join([f"{minus}1"] + [f"{minus}{_at_least(t, row + '.confidence')}" for t in CONFIDENCE_GRID])
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in ("n", *COUNT_COLUMNS))
    return (f"INSERT INTO prediction_counts ({', '.join(_KEY)}, n, {', '.join(COUNT_COLUMNS)}) "
            f"SELECT l.sols, l.sol_bin, {row}.model_id, {row}.predicted_class, IFNULL({row}.instrument, ''), "
            f"{row}.abstained, {values} FROM ({_levels(row)}) AS l WHERE true "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}")


def _counts_drop_empty(row: str) -> list[str]:
    """Delete the rows of ``row``'s keys that count nothing any more (one primary-key look-up each)."""
    key = (f"model_id = {row}.model_id AND predicted_class = {row}.predicted_class AND instrument = "
           f"IFNULL({row}.instrument, '') AND abstained = {row}.abstained AND n = 0")
    levels = [("0", "0", ""), ("1", f"{row}.sol", f" AND {row}.sol IS NOT NULL")]
    levels += [(str(w), f"{row}.sol / {w}", f" AND {row}.sol >= 0") for w in SOL_LEVELS[:-1]]
    return [f"DELETE FROM prediction_counts WHERE sols = {w} AND sol_bin = {b} AND {key}{guard}"
            for w, b, guard in levels]


def _trigger(name: str, event: str, table: str, statements: list[str]) -> str:
    return (f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} BEGIN\n    "
            + ";\n    ".join(statements) + ";\nEND")


PREDICTION_COUNT_STATEMENTS = {  # trigger event -> what it does to prediction_counts
    "insert": [_counts_delta("NEW", 1)],
    "delete": [_counts_delta("OLD", -1), *_counts_drop_empty("OLD")],
    "update": [_counts_delta("OLD", -1), *_counts_drop_empty("OLD"), _counts_delta("NEW", 1)],
}

_PREDICTION_COUNTS_TABLE = (
    "CREATE TABLE prediction_counts (sols INTEGER NOT NULL, sol_bin INTEGER NOT NULL, model_id TEXT NOT NULL, "
    "predicted_class TEXT NOT NULL, instrument TEXT NOT NULL, abstained INTEGER NOT NULL, n INTEGER NOT NULL, "
    + ", ".join(f"{c} INTEGER NOT NULL" for c in COUNT_COLUMNS)
    + f", PRIMARY KEY ({', '.join(_KEY)})) WITHOUT ROWID")

# Level 1 from the rows (one sort), the wider levels from level 1, level 0 from level 1 plus the rows
# without a sol: the very sums the triggers keep, in a fraction of the time row by row would take.
_SUMS = ", ".join(f"sum({c})" for c in ("n", *COUNT_COLUMNS))
_ALL = ", ".join(("n", *COUNT_COLUMNS))
_FILL_PREDICTION_COUNTS = (
    "INSERT INTO prediction_counts SELECT 1, sol, model_id, predicted_class, IFNULL(instrument, ''), abstained, "
    f"count(*), {', '.join('sum' + _at_least(t, 'confidence') for t in CONFIDENCE_GRID)} "
    "FROM predictions WHERE sol IS NOT NULL GROUP BY 2, 3, 4, 5, 6",
    *[f"INSERT INTO prediction_counts SELECT {w}, sol_bin / {w}, model_id, predicted_class, instrument, abstained, "
      f"{_SUMS} FROM prediction_counts WHERE sols = 1 AND sol_bin >= 0 GROUP BY 2, 3, 4, 5, 6"
      for w in SOL_LEVELS[:-1]],
    f"INSERT INTO prediction_counts SELECT 0, 0, model_id, predicted_class, instrument, abstained, {_SUMS} "
    f"FROM (SELECT model_id, predicted_class, instrument, abstained, {_ALL} FROM prediction_counts WHERE sols = 1 "
    f"UNION ALL SELECT model_id, predicted_class, IFNULL(instrument, ''), abstained, 1, "
    f"{', '.join(_at_least(t, 'confidence') for t in CONFIDENCE_GRID)} FROM predictions "
    "WHERE sol IS NULL) GROUP BY 3, 4, 5, 6",
)

# ------------------------------------------------------------------------------------------- scenes
_SCENE_TABLES = (
    "CREATE TABLE scene_counts (scene_id INTEGER NOT NULL, count_confidence REAL NOT NULL, class TEXT NOT NULL, "
    "model_id TEXT NOT NULL, n INTEGER NOT NULL, source_image TEXT NOT NULL, landmarks INTEGER NOT NULL, "
    "PRIMARY KEY (scene_id, count_confidence, class)) WITHOUT ROWID",
    # scenes with >= n of a class, in page order (source image) and by landmarks (the source-image facet)
    "CREATE INDEX scene_counts_by_class ON scene_counts (count_confidence, model_id, class, n, source_image, "
    "landmarks)",
    "CREATE TABLE scene_class_pairs (count_confidence REAL NOT NULL, model_id TEXT NOT NULL, class TEXT NOT NULL, "
    "n INTEGER NOT NULL, with_class TEXT NOT NULL, scenes INTEGER NOT NULL, "
    "PRIMARY KEY (count_confidence, model_id, class, n, with_class)) WITHOUT ROWID",
)
_SCENE_OF_COUNT = ("SELECT i.id, {c}.count_confidence, {c}.class, {c}.model_id, {c}.n, i.source_image, i.landmarks "
                   "FROM landmark_images i WHERE i.model_id = {c}.model_id AND i.sha256 = {c}.sha256")
_COUNTS_OF_SCENE = ("SELECT {i}.id, c.count_confidence, c.class, {i}.model_id, c.n, {i}.source_image, {i}.landmarks "
                    "FROM landmark_counts c WHERE c.model_id = {i}.model_id AND c.sha256 = {i}.sha256")
_FILL_SCENE_COUNTS = ("INSERT INTO scene_counts SELECT i.id, c.count_confidence, c.class, c.model_id, c.n, "
                      "i.source_image, i.landmarks FROM landmark_counts c JOIN landmark_images i "
                      "ON i.model_id = c.model_id AND i.sha256 = c.sha256")
_DROP_COUNT = ("DELETE FROM scene_counts WHERE scene_id = (SELECT id FROM landmark_images "
               "WHERE model_id = OLD.model_id AND sha256 = OLD.sha256) "
               "AND count_confidence = OLD.count_confidence AND class = OLD.class")
_SCENE_COUNT_STATEMENTS = {  # (table, event) -> what it does to scene_counts
    ("landmark_counts", "insert"): ["INSERT INTO scene_counts " + _SCENE_OF_COUNT.format(c="NEW")],
    ("landmark_counts", "delete"): [_DROP_COUNT],
    ("landmark_counts", "update"): [_DROP_COUNT, "INSERT INTO scene_counts " + _SCENE_OF_COUNT.format(c="NEW")],
    ("landmark_images", "insert"): ["INSERT INTO scene_counts " + _COUNTS_OF_SCENE.format(i="NEW")],
    ("landmark_images", "delete"): ["DELETE FROM scene_counts WHERE scene_id = OLD.id"],
    ("landmark_images", "update"): ["DELETE FROM scene_counts WHERE scene_id = OLD.id",
                                    "INSERT INTO scene_counts " + _COUNTS_OF_SCENE.format(i="NEW")],
}

# The other counted classes (n >= 1) of the same scene at the same count confidence as row r.
_OTHERS = ("FROM scene_counts o WHERE o.scene_id = {r}.scene_id AND o.count_confidence = {r}.count_confidence "
           "AND o.class <> {r}.class AND o.n >= 1 AND {r}.n >= 1")
_PAIR_KEY = "count_confidence, model_id, class, n, with_class"
_PAIRS_ADD = [
    f"INSERT INTO scene_class_pairs ({_PAIR_KEY}, scenes) SELECT NEW.count_confidence, NEW.model_id, NEW.class, "
    f"NEW.n, NEW.class, 1 WHERE NEW.n >= 1 ON CONFLICT ({_PAIR_KEY}) DO UPDATE SET scenes = scenes + 1",
    f"INSERT INTO scene_class_pairs ({_PAIR_KEY}, scenes) SELECT NEW.count_confidence, NEW.model_id, NEW.class, "
    f"NEW.n, o.class, 1 {_OTHERS.format(r='NEW')} ON CONFLICT ({_PAIR_KEY}) DO UPDATE SET scenes = scenes + 1",
    f"INSERT INTO scene_class_pairs ({_PAIR_KEY}, scenes) SELECT NEW.count_confidence, o.model_id, o.class, o.n, "
    f"NEW.class, 1 {_OTHERS.format(r='NEW')} ON CONFLICT ({_PAIR_KEY}) DO UPDATE SET scenes = scenes + 1",
]
_PAIRS_REMOVE = [
    "UPDATE scene_class_pairs SET scenes = scenes - 1 WHERE OLD.n >= 1 AND count_confidence = OLD.count_confidence "
    "AND model_id = OLD.model_id AND class = OLD.class AND n = OLD.n AND with_class = OLD.class",
    "UPDATE scene_class_pairs SET scenes = scenes - 1 WHERE count_confidence = OLD.count_confidence AND model_id = "
    f"OLD.model_id AND class = OLD.class AND n = OLD.n AND with_class IN (SELECT o.class {_OTHERS.format(r='OLD')})",
    "UPDATE scene_class_pairs SET scenes = scenes - 1 WHERE (count_confidence, model_id, class, n, with_class) IN "
    f"(SELECT OLD.count_confidence, o.model_id, o.class, o.n, OLD.class {_OTHERS.format(r='OLD')})",
    "DELETE FROM scene_class_pairs WHERE count_confidence = OLD.count_confidence AND model_id = OLD.model_id "
    "AND scenes <= 0",
]
_FILL_SCENE_PAIRS = (
    f"INSERT INTO scene_class_pairs ({_PAIR_KEY}, scenes) SELECT a.count_confidence, a.model_id, a.class, a.n, "
    "b.class, count(*) FROM scene_counts a JOIN scene_counts b ON b.scene_id = a.scene_id AND b.count_confidence = "
    "a.count_confidence WHERE a.n >= 1 AND b.n >= 1 GROUP BY 1, 2, 3, 4, 5")


def counts_schema(search_triggers: dict[str, list[str]]) -> tuple[str, ...]:
    """Schema 3 -> 4: the count tables filled from the rows, then the triggers that keep them.

    ``search_triggers``: event -> the FTS statements of the predictions triggers (schema 3's),
    which the new triggers keep beside the counts.
    """
    return (
        *[f"DROP TRIGGER predictions_{event}_search" for event in ("insert", "delete", "update")],
        "DROP TABLE prediction_facets",
        "DROP TABLE prediction_sol_facets",
        _PREDICTION_COUNTS_TABLE,
        *_FILL_PREDICTION_COUNTS,
        *[_trigger(f"predictions_{event}_search", event, "predictions",
                   search_triggers[event] + PREDICTION_COUNT_STATEMENTS[event])
          for event in ("insert", "delete", "update")],
        *_SCENE_TABLES,
        _FILL_SCENE_COUNTS,
        _FILL_SCENE_PAIRS,
        *[_trigger(f"{table}_{event}_scene_counts", event, table, statements)
          for (table, event), statements in _SCENE_COUNT_STATEMENTS.items()],
        _trigger("scene_counts_insert_pairs", "insert", "scene_counts", _PAIRS_ADD),
        _trigger("scene_counts_delete_pairs", "delete", "scene_counts", _PAIRS_REMOVE),
        # Result pages walk these in (confidence, id) order as before; the columns after id, which
        # change no order, let a page's other filters (abstained, instrument, sol range) and the
        # count of an off-grid threshold's slice (tens of thousands of rows at 3.7 M) read the index
        # alone, with a row look-up only for each row shown.
        "DROP INDEX predictions_by_confidence",
        "CREATE INDEX predictions_by_confidence ON predictions (model_id, confidence, id, abstained, predicted_class, "
        "instrument, sol)",
        "DROP INDEX predictions_by_class",
        "CREATE INDEX predictions_by_class ON predictions (model_id, predicted_class, confidence, id, abstained, "
        "instrument, sol)",
        # scene pages without a class filter, in order; the scenes with the most landmarks
        "CREATE INDEX landmark_images_in_order ON landmark_images (source_image)",
        "CREATE INDEX landmark_images_by_landmarks ON landmark_images (landmarks DESC, source_image)",
    )
