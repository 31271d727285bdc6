"""The Atlas's SQL reads through the indexes and facet tables it was designed for (EXPLAIN QUERY
PLAN of every statement a typical request runs): no scan of a whole rows table."""

from __future__ import annotations

import sqlite3

import pytest
from atlas_catalog import MSL_MODEL, make_atlas_catalog

from deepmars.web.atlas import images, scenes
from deepmars.web.atlas.filters import Cursor, Filters
from deepmars.web.atlas.vocabulary import ParsedText, Vocabulary

NO_TEXT = ParsedText((), (), ())


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    catalog = make_atlas_catalog(tmp_path_factory.mktemp("plans"))
    connection = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    yield connection
    connection.close()


def plans(conn, fn, *args) -> list[str]:
    """The query plan lines of every SELECT ``fn`` runs."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        result = fn(conn, *args)
        if isinstance(result, sqlite3.Cursor):
            result.fetchall()
    finally:
        conn.set_trace_callback(None)
    lines = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            lines += [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return lines


def assert_no_table_scan(lines: list[str]) -> None:
    for line in lines:
        assert not (line.startswith("SCAN") and any(t in line for t in ("predictions", "landmark_images s",
                                                                         "landmarks"))
                    and "USING" not in line), lines


@pytest.mark.parametrize("filters, index", [
    (Filters(classes=("wheel",), models=(MSL_MODEL,)), "predictions_by_class"),
    (Filters(classes=("wheel", "apxs"), confidence_step=16), "predictions_by_class"),
    (Filters(instruments=("MH",)), "predictions_by_confidence"),
    (Filters(), "predictions_by_confidence"),
])
def test_result_pages_walk_an_index_in_order(conn, filters, index):
    q = images.Query.of(filters, NO_TEXT)
    lines = plans(conn, images.page, q, Cursor(0.9, 10), 20)
    assert any(index in line for line in lines) and not any("TEMP B-TREE" in line for line in lines), lines
    assert_no_table_scan(lines)


@pytest.mark.parametrize("filters, facet", [
    (Filters(), "class"), (Filters(classes=("wheel",), confidence_step=18), "instrument"),
    (Filters(instruments=("ML",)), "sol"), (Filters(sol_min=50, sol_max=149), "model"),
    (Filters(sol_min=55, sol_max=260), "class"),
])
def test_facet_counts_read_the_facet_tables_and_sol_ends_by_index(conn, filters, facet):
    lines = plans(conn, images.counts, images.Query.of(filters.without(facet), NO_TEXT), facet)
    assert any("prediction_facets" in line or "prediction_sol_facets" in line for line in lines), lines
    assert_no_table_scan(lines)
    if filters.sol_min == 55:
        assert any("predictions_by_sol" in line for line in lines), lines


def test_free_text_and_scene_queries_use_fts_and_keys(conn):
    text = Vocabulary(["crater"], {}).parse("ESP_000001")
    lines = plans(conn, images.page, images.Query.of(Filters(), text), None, 20)
    assert any("VIRTUAL TABLE INDEX" in line for line in lines), lines
    sq = scenes.scene_query(Filters(kind="scenes", min_counts=(("crater", 2),)), NO_TEXT, 0.9)
    lines = plans(conn, scenes.page, sq, None, 20) + plans(conn, scenes.counts, sq, "class")
    assert any("landmark_counts" in line and "INDEX" in line for line in lines), lines
