"""Schema 3: the search tables (FTS5 text, facet counts) follow every write, merge and migration."""

from __future__ import annotations

import sqlite3

import pytest
from test_landmarks_classify import A, B, classify, sql, write_scene
from test_predict_fixtures import error_row, prediction_row, write_batch

from deepmars.catalog import SCHEMA_VERSION, Catalog
from deepmars.catalog.merge import merge_catalogs
from deepmars.catalog.schema import CONFIDENCE_STEPS, LANDMARK_SCHEMA, SCHEMA, SOL_BIN, confidence_step

FACETS_FROM_ROWS = f"""
SELECT model_id, predicted_class, IFNULL(instrument, ''), {confidence_step('confidence')}, abstained, count(*)
FROM predictions GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"""
SOL_FACETS_FROM_ROWS = f"""
SELECT model_id, sol / {SOL_BIN}, predicted_class, IFNULL(instrument, ''), {confidence_step('confidence')}, abstained,
       count(*) FROM predictions WHERE sol IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"""


def assert_search_tables_agree(path) -> None:
    """Facet counts equal a GROUP BY of the rows, and both FTS indexes match their tables."""
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM prediction_facets ORDER BY 1, 2, 3, 4, 5").fetchall() == \
            conn.execute(FACETS_FROM_ROWS).fetchall()
        assert conn.execute("SELECT * FROM prediction_sol_facets ORDER BY 1, 2, 3, 4, 5, 6").fetchall() == \
            conn.execute(SOL_FACETS_FROM_ROWS).fetchall()
        for fts in ("prediction_text", "scene_text"):
            conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)")  # raises if out of step
    conn.close()


def _rows(n: int, model: str = "runs:/a") -> list:
    classes = ["wheel", "drill holes", "ground"]
    return [prediction_row(f"/m/{i:04d}{'MH' if i % 2 else 'ML'}_DRCL.JPG", model=model, cls=classes[i % 3],
                           conf=round(0.05 * (i % 21), 2), sol=i * 7, instrument=None if i % 5 == 0 else "ML")
            for i in range(n)]


@pytest.mark.parametrize("k", range(CONFIDENCE_STEPS + 1))
def test_a_confidence_counts_at_step_k_exactly_when_the_result_filter_keeps_it(k):
    conn = sqlite3.connect(":memory:")
    values = [0.0, 0.05, 0.1, 0.15, 0.29, 0.3, 0.35, 0.55, 0.7, 0.85, 0.9, 0.95, 0.999999, 1.0,
              *[i / 1000 for i in range(1001)], *[k / CONFIDENCE_STEPS + d for d in (-1e-12, 0.0, 1e-12)]]
    for value in values:
        step = conn.execute(f"SELECT {confidence_step('?')}", (value,) * 5).fetchone()[0]
        assert (step >= k) == (value >= k / CONFIDENCE_STEPS), (value, step, k)


def test_counts_and_text_follow_inserts_reclassification_and_errors(tmp_path):
    path = tmp_path / "c.sqlite"
    with Catalog.open(path) as cat:
        write_batch(cat, _rows(40), [])
        ids = dict(cat.conn.execute("SELECT path, id FROM predictions"))
        # force=true: the same paths again with other classes, and two paths now failing
        again = [r._replace(predicted_class="wheel", confidence=0.95) for r in _rows(40)[:10]]
        write_batch(cat, again, [error_row(r.path) for r in _rows(40)[10:12]])
        assert dict(cat.conn.execute("SELECT path, id FROM predictions WHERE path IN (?, ?)",
                                     (again[0].path, again[9].path))) == {p: ids[p] for p in (again[0].path, again[9].path)}
        hits = cat.conn.execute("SELECT p.path FROM prediction_text JOIN predictions p ON p.id = prediction_text.rowid "
                                "WHERE prediction_text MATCH ? ORDER BY p.path", ('"drill holes"',)).fetchall()
        expected = cat.conn.execute("SELECT path FROM predictions WHERE predicted_class = 'drill holes' "
                                    "ORDER BY path").fetchall()
        assert hits == expected and hits
    assert_search_tables_agree(path)


def _v2_catalog(path, rows) -> None:
    """A catalog as schema 2 wrote it, with predictions."""
    with sqlite3.connect(path) as conn:
        for statement in filter(str.strip, (SCHEMA + ";" + LANDMARK_SCHEMA).split(";")):
            conn.execute(statement)
        conn.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 16)})", [r[:16] for r in rows])
        conn.execute("PRAGMA user_version=2")
    conn.close()


@pytest.mark.slow
def test_a_schema_2_catalog_migrates_to_what_a_new_catalog_holds(tmp_path, scenes):
    rows = _rows(30)
    old, new = tmp_path / "old.sqlite", tmp_path / "new.sqlite"
    _v2_catalog(old, rows)
    with Catalog.open(new) as cat:
        write_batch(cat, rows, [])
    classify(scenes, old)  # migrates, then adds landmark rows
    classify(scenes, new)
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
    assert sql(old, schema) == sql(new, schema)
    assert sql(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(3,)]
    for table in ("prediction_facets", "prediction_sol_facets"):
        assert sql(old, f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5") == \
            sql(new, f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5")
    text = "SELECT rowid FROM prediction_text WHERE prediction_text MATCH 'wheel' ORDER BY rowid"
    assert sql(old, text) == sql(new, text) and sql(old, text)
    for path in (old, new):
        assert_search_tables_agree(path)


@pytest.fixture
def scenes(tmp_path):
    folder = tmp_path / "scenes"
    write_scene(folder, A)
    write_scene(folder, B)
    return folder


@pytest.mark.slow
def test_search_tables_are_right_after_a_merge_with_overlapping_rows(tmp_path, scenes):
    first, second, merged = (tmp_path / f"{n}.sqlite" for n in ("first", "second", "merged"))
    with Catalog.open(first) as cat:
        write_batch(cat, _rows(30), [])
    with Catalog.open(second) as cat:  # half the same paths, classified later and differently, and errors
        later = [r._replace(predicted_class="ground", confidence=0.4, abstained=1, classified_at="t9")
                 for r in _rows(30)[15:]]
        write_batch(cat, later + _rows(10, model="runs:/b"), [error_row(_rows(30)[0].path, at="t9")])
    classify(scenes, second)
    merge_catalogs([first, second], merged)
    assert sql(merged, "SELECT count(*) FROM predictions") == [(39,)]  # 30 + 10 - 1 now an error
    assert sql(merged, "SELECT count(*) FROM predictions WHERE model_id = 'runs:/a' AND predicted_class = 'ground' "
               "AND classified_at = 't9'") == [(15,)]
    assert sql(merged, "SELECT count(*) FROM scene_text WHERE scene_text MATCH ?", (A.split("_")[1],)) == [(1,)]
    assert_search_tables_agree(merged)
    merge_catalogs([second], merged)  # again: nothing changes
    assert_search_tables_agree(merged)
