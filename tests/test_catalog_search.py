"""The search tables (FTS5 text, schema 3; count tables, schema 4) follow every write, merge and
migration: each is compared with what the rows hold, computed here in Python."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter

import pytest
from support import A, B, error_row, prediction_row

from deepmars.catalog import SCHEMA_VERSION, Catalog
from deepmars.catalog.count_tables import CONFIDENCE_GRID, COUNT_COLUMNS, GRID_VALUES, SOL_LEVELS
from deepmars.catalog.landmarks import LandmarkStore
from deepmars.catalog.merge import merge_catalogs
from deepmars.catalog.schema import LANDMARK_SCHEMA, SCHEMA, SEARCH_SCHEMA


def expected_prediction_counts(conn) -> dict[tuple, tuple]:
    """prediction_counts as the rows of predictions say it should be."""
    out: dict[tuple, list[int]] = {}
    for model, sol, name, instrument, confidence, abstained in conn.execute(
            "SELECT model_id, sol, predicted_class, instrument, confidence, abstained FROM predictions"):
        levels = [(0, 0)] + ([(1, sol)] if sol is not None else []) + \
            ([(w, sol // w) for w in SOL_LEVELS if w > 1] if sol is not None and sol >= 0 else [])
        for sols, sol_bin in levels:
            counts = out.setdefault((sols, sol_bin, model, name, instrument or "", abstained),
                                    [0] * (1 + len(GRID_VALUES)))
            counts[0] += 1
            for i, value in enumerate(GRID_VALUES):
                counts[1 + i] += confidence >= value
    return {key: tuple(counts) for key, counts in out.items()}


def expected_scene_tables(conn) -> tuple[set, Counter]:
    """scene_counts and scene_class_pairs as landmark_images and landmark_counts say they should be."""
    rows = set(conn.execute(
        "SELECT i.id, c.count_confidence, c.class, c.model_id, c.n, i.source_image, i.landmarks FROM landmark_counts c "
        "JOIN landmark_images i ON i.model_id = c.model_id AND i.sha256 = c.sha256"))
    present: dict[tuple, list[tuple[str, int]]] = {}
    for scene, threshold, name, model, n, _, _ in rows:
        if n >= 1:
            present.setdefault((scene, threshold, model), []).append((name, n))
    pairs: Counter = Counter()
    for (_, threshold, model), classes in present.items():
        for name, n in classes:
            for other, _ in classes:
                pairs[(threshold, model, name, n, other)] += 1
    return rows, pairs


def assert_search_tables_agree(path) -> None:
    """Every count table equals what the rows hold, and both FTS indexes match their tables."""
    with sqlite3.connect(path) as conn:
        stored = {tuple(r[:6]): tuple(r[6:]) for r in conn.execute("SELECT * FROM prediction_counts")}
        assert stored == expected_prediction_counts(conn)
        scene_rows, pairs = expected_scene_tables(conn)
        assert set(conn.execute("SELECT * FROM scene_counts")) == scene_rows
        assert Counter({tuple(r[:5]): r[5] for r in conn.execute("SELECT * FROM scene_class_pairs")}) == pairs
        for fts in ("prediction_text", "scene_text"):
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")  # raises if out of step
    conn.close()


def _rows(n: int, model: str = "runs:/a") -> list:
    classes = ["wheel", "drill holes", "ground"]
    sols = [None, -4, 0, 9, 10, 49, 50, 99, 100, 1234]
    return [prediction_row(f"/m/{i:04d}{'MH' if i % 2 else 'ML'}_DRCL.JPG", model=model, cls=classes[i % 3],
                           conf=round(0.05 * (i % 21), 2) if i % 4 else GRID_VALUES[(i * 37) % len(GRID_VALUES)],
                           sol=sols[i % len(sols)] if i % 7 else i * 7, instrument=None if i % 5 == 0 else "ML")
            for i in range(n)]


def test_the_confidence_grid_is_the_decimals_it_names_and_its_columns_say_which():
    assert len(CONFIDENCE_GRID) == len(set(GRID_VALUES)) == 46 and GRID_VALUES[-1] == 1.0
    assert {0.05, 0.5, 0.85, 0.93, 0.99, 0.995, 0.999, 0.9995, 0.9999} <= set(GRID_VALUES)
    for value, column in zip(GRID_VALUES, COUNT_COLUMNS, strict=True):
        assert float(column.removeprefix("n_ge_").replace("_", ".")) == value  # the API's float of that decimal


def test_a_grid_column_counts_exactly_the_rows_a_threshold_keeps(tmp_path, write_batch):
    # each grid value and the doubles either side of it: a column must agree with "confidence >= value"
    confidences = [c for v in GRID_VALUES for c in (math.nextafter(v, 0), v, math.nextafter(v, 2))]
    path = tmp_path / "c.sqlite"
    with Catalog.open(path) as cat:
        write_batch(cat, [prediction_row(f"/m/{i}.JPG", conf=c) for i, c in enumerate(confidences)], [])
        for value, column in zip(GRID_VALUES, COUNT_COLUMNS, strict=True):
            stored = cat.conn.execute(f"SELECT sum({column}) FROM prediction_counts WHERE sols = 0").fetchone()[0]
            kept = cat.conn.execute("SELECT count(*) FROM predictions WHERE confidence >= ?", (value,)).fetchone()[0]
            assert stored == kept == sum(c >= value for c in confidences), value


def test_counts_and_text_follow_inserts_reclassification_deletes_and_errors(tmp_path, write_batch):
    path = tmp_path / "c.sqlite"
    with Catalog.open(path) as cat:
        write_batch(cat, _rows(60), [])
        assert_search_tables_agree(path)
        ids = dict(cat.conn.execute("SELECT path, id FROM predictions"))
        # force=true: the same paths again with other classes, and two paths now failing
        again = [r._replace(predicted_class="wheel", confidence=0.95, sol=7) for r in _rows(60)[:10]]
        write_batch(cat, again, [error_row(r.path) for r in _rows(60)[10:12]])
        assert dict(cat.conn.execute("SELECT path, id FROM predictions WHERE path IN (?, ?)",
                                     (again[0].path, again[9].path))) == {p: ids[p] for p in (again[0].path, again[9].path)}
        hits = cat.conn.execute("SELECT p.path FROM prediction_text JOIN predictions p ON p.id = prediction_text.rowid "
                                "WHERE prediction_text MATCH ? ORDER BY p.path", ('"drill holes"',)).fetchall()
        expected = cat.conn.execute("SELECT path FROM predictions WHERE predicted_class = 'drill holes' "
                                    "ORDER BY path").fetchall()
        assert hits == expected and hits
        assert_search_tables_agree(path)
        with cat.transaction() as conn:  # any SQL, not only the stores
            conn.execute("UPDATE predictions SET sol = sol + 45, abstained = 1 - abstained WHERE id % 3 = 0")
            conn.execute("DELETE FROM predictions WHERE id % 4 = 0")
    assert_search_tables_agree(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM predictions")
        assert conn.execute("SELECT count(*) FROM prediction_counts").fetchone() == (0,)  # no rows of zeros left
    conn.close()


@pytest.mark.slow
def test_scene_tables_follow_landmark_writes_replacements_errors_and_new_thresholds(tmp_path, write_scene, classify,
                                                                                    sql):
    folder = tmp_path / "scenes"
    write_scene(folder, A)
    write_scene(folder, B)
    path = tmp_path / "c.sqlite"
    classify(folder, path)
    assert_search_tables_agree(path)
    assert sql(path, "SELECT class, n FROM scene_counts WHERE n > 0 AND source_image = ? ORDER BY class", (A,)) == \
        [("crater", 3)]  # its dark dune (p = 0.8) is below the count confidence
    classify(folder, path, force=True)  # every image replaced by itself: new rows, new ids
    assert_search_tables_agree(path)
    classify(folder, path, count_confidence=0.5)  # counts added at another threshold
    assert sql(path, "SELECT DISTINCT count_confidence FROM scene_counts ORDER BY 1") == [(0.5,), (0.9,)]
    pairs = "SELECT with_class, scenes FROM scene_class_pairs WHERE count_confidence = ? AND class = 'crater' AND n = ?"
    assert sql(path, pairs, (0.9, 3)) == [("crater", 1)]
    assert sql(path, pairs, (0.5, 3)) == [("crater", 1), ("dark dune", 1)]  # A: 3 craters and a dark dune
    assert sql(path, pairs, (0.5, 1)) == [("crater", 1), ("dark dune", 1)]  # B: 1 crater and 2 dark dunes
    assert_search_tables_agree(path)
    with Catalog.open(path) as cat:
        store = LandmarkStore(cat, cat.conn.execute("SELECT model_id FROM landmark_images").fetchone()[0])
        sha = cat.conn.execute("SELECT sha256 FROM landmark_images WHERE source_image = ?", (B,)).fetchone()[0]
        with cat.transaction() as conn:  # a count changed in place, and an image renamed, by any SQL
            conn.execute("UPDATE landmark_counts SET n = n + 2 WHERE sha256 = ? AND class = 'crater'", (sha,))
            conn.execute("UPDATE landmark_images SET source_image = 'ESP_000009_1000_RED', landmarks = 9 WHERE sha256 = ?",
                         (sha,))
        assert_search_tables_agree(path)
        store.write_error(error_row(sql(path, "SELECT path FROM landmark_images WHERE sha256 = ?", (sha,))[0][0]))
        assert_search_tables_agree(path)
        with cat.transaction() as conn:  # counts written before their image (any order keeps them right)
            conn.execute("INSERT INTO landmark_counts VALUES (?, 'fresh', 0.9, 'crater', 'X', 4)", (store.model_id,))
            conn.execute("INSERT INTO landmark_images SELECT model_id, 'fresh', 'X', path || 'x', file_size, "
                         "file_mtime_ns, source_width, source_height, working_width, working_height, landmarks, notes, "
                         "detector, overlay, classified_at, NULL FROM landmark_images LIMIT 1")
    assert sql(path, "SELECT n FROM scene_counts WHERE source_image = 'X'") == [(4,)]
    assert_search_tables_agree(path)


def _catalog_at(path, version: int, rows) -> None:
    """A catalog as schema ``version`` (2 or 3) wrote it, with predictions."""
    with sqlite3.connect(path) as conn:
        for statement in filter(str.strip, (SCHEMA + ";" + LANDMARK_SCHEMA).split(";")):
            conn.execute(statement)
        if version == 3:
            for statement in SEARCH_SCHEMA:
                conn.execute(statement)
        row_id = ", NULL" if version == 3 else ""  # schema 3 numbers rows (the id column, last)
        conn.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 16)}{row_id})", [r[:16] for r in rows])
        conn.execute(f"PRAGMA user_version={version}")
    conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("version", [2, 3])
def test_an_older_catalog_migrates_to_what_a_new_catalog_holds(tmp_path, scenes, version, write_batch, classify, sql):
    rows = _rows(40)
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    _catalog_at(old, version, rows)
    with Catalog.open(new) as cat:
        write_batch(cat, rows, [])
    classify(scenes, old)  # migrates, then adds landmark rows
    classify(scenes, new)
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    assert sql(old, schema) == sql(new, schema)
    assert sql(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(4,)]
    for table, key in (("prediction_counts", "1, 2, 3, 4, 5, 6"), ("scene_counts", "2, 3, 6"),
                       ("scene_class_pairs", "1, 2, 3, 4, 5")):
        columns = "*" if table != "scene_counts" else "count_confidence, class, model_id, n, source_image, landmarks"
        assert sql(old, f"SELECT {columns} FROM {table} ORDER BY {key}") == \
            sql(new, f"SELECT {columns} FROM {table} ORDER BY {key}"), table
    text = "SELECT rowid FROM prediction_text WHERE prediction_text MATCH 'wheel' ORDER BY rowid"
    assert sql(old, text) == sql(new, text) and sql(old, text)
    for path in (old, new):
        assert_search_tables_agree(path)


def test_a_schema_3_catalog_with_scenes_gains_their_count_tables_when_migrated(tmp_path, scenes, sql):
    path = tmp_path / "c.sqlite"
    _catalog_at(path, 3, _rows(5))
    with sqlite3.connect(path) as conn:  # landmark rows as schema 3 held them, no scene tables yet
        conn.execute("INSERT INTO landmark_images VALUES ('m', 's1', 'ESP_1', '/x/ESP_1.png', 1, 1, 10, 10, 10, 10, "
                     "2, '', '{}', NULL, 't', NULL)")
        conn.executemany("INSERT INTO landmark_counts VALUES ('m', 's1', 0.9, ?, 'ESP_1', ?)", [("crater", 2), ("dune", 0)])
    conn.close()
    Catalog.open(path).close()
    assert sql(path, "SELECT class, n, source_image, landmarks FROM scene_counts ORDER BY class") == \
        [("crater", 2, "ESP_1", 2), ("dune", 0, "ESP_1", 2)]
    assert sql(path, "SELECT class, n, with_class, scenes FROM scene_class_pairs") == [("crater", 2, "crater", 1)]
    assert_search_tables_agree(path)


@pytest.fixture
def scenes(tmp_path, write_scene):
    folder = tmp_path / "scenes"
    write_scene(folder, A)
    write_scene(folder, B)
    return folder


@pytest.mark.slow
def test_search_tables_are_right_after_a_merge_with_overlapping_rows(tmp_path, scenes, write_batch, classify, sql):
    first, second, merged = (tmp_path / f"{n}.sqlite" for n in ("first", "second", "merged"))
    with Catalog.open(first) as cat:
        write_batch(cat, _rows(30), [])
    classify(scenes, first)
    with Catalog.open(second) as cat:  # half the same paths, classified later and differently, and errors
        later = [r._replace(predicted_class="ground", confidence=0.4, abstained=1, classified_at="t9")
                 for r in _rows(30)[15:]]
        write_batch(cat, later + _rows(10, model="runs:/b"), [error_row(_rows(30)[0].path, at="t9")])
    classify(scenes, second, force=True)
    merge_catalogs([first, second], merged)
    assert sql(merged, "SELECT count(*) FROM predictions") == [(39,)]  # 30 + 10 - 1 now an error
    assert sql(merged, "SELECT count(*) FROM predictions WHERE model_id = 'runs:/a' AND predicted_class = 'ground' "
               "AND classified_at = 't9'") == [(15,)]
    assert sql(merged, "SELECT count(*) FROM scene_text WHERE scene_text MATCH ?", (A.split("_")[1],)) == [(1,)]
    assert sql(merged, "SELECT count(DISTINCT scene_id) FROM scene_counts") == [(2,)]
    assert_search_tables_agree(merged)
    merge_catalogs([second], merged)  # again: nothing changes
    assert_search_tables_agree(merged)
