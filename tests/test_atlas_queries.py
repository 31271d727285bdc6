"""The Atlas's SQL reads through the indexes and facet tables it was designed for (EXPLAIN QUERY
PLAN of every statement a typical request runs): no scan of a whole rows table."""

from __future__ import annotations

import sqlite3

import pytest
from support import HIRISE_MODEL, MSL_MODEL

from deepmars.web.atlas import images, scenes
from deepmars.web.atlas.filters import Cursor, Filters
from deepmars.web.atlas.image_counts import ImageCounts
from deepmars.web.atlas.vocabulary import ParsedText, Vocabulary

NO_TEXT = ParsedText((), (), ())


@pytest.fixture(scope="module")
def conn(tmp_path_factory, make_atlas_catalog):
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
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            lines += [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return lines


def assert_no_table_scan(lines: list[str]) -> None:
    for line in lines:
        assert not (line.startswith("SCAN") and any(t in line for t in ("predictions", "landmark_images s",
                                                                         "landmarks"))
                    and "USING" not in line), lines


MODELS = (MSL_MODEL,)


@pytest.mark.parametrize("filters, index", [
    (Filters(classes=("wheel",), models=(MSL_MODEL,)), "predictions_by_class"),
    (Filters(classes=("wheel", "apxs"), min_confidence=0.8), "predictions_by_class"),
    (Filters(instruments=("MH",)), "predictions_by_confidence"),
    (Filters(), "predictions_by_confidence"),
])
def test_result_pages_walk_an_index_in_order(conn, filters, index):
    q = images.Query.of(filters, NO_TEXT)
    lines = plans(conn, images.page, q, MODELS, Cursor(0.9, 10), 20)
    assert any(index in line for line in lines) and not any("TEMP B-TREE" in line for line in lines), lines
    assert_no_table_scan(lines)


def _facet(conn, q, facet):
    counts = ImageCounts(conn, q, MODELS)
    return counts.facet(facet) if facet else counts.total()


@pytest.mark.parametrize("filters, facet", [
    (Filters(), "class"), (Filters(classes=("wheel",), min_confidence=0.9), "instrument"),
    (Filters(instruments=("ML",)), "sol"), (Filters(sol_min=50, sol_max=149), "model"),
    (Filters(sol_min=55, sol_max=1260), "class"), (Filters(sol_min=7), None),
])
def test_facet_counts_read_count_table_ranges_only(conn, filters, facet):
    lines = plans(conn, _facet, images.Query.of(filters, NO_TEXT), facet)
    assert lines and all("prediction_counts USING PRIMARY KEY" in line or "TEMP B-TREE" in line for line in lines), lines
    if filters.sol_min == 55:  # 55-59 and 1260 as single sols, 60-99 and 1250-1259 as 10-sol bins, 100-1249
        assert sum("prediction_counts" in line for line in lines) == 5, lines


@pytest.mark.parametrize("facet", ["class", "sol", None])
def test_a_threshold_off_the_grid_reads_the_rows_below_the_next_grid_value_from_the_index_alone(conn, facet):
    lines = plans(conn, _facet, images.Query.of(Filters(min_confidence=0.935), NO_TEXT), facet)
    if facet == "sol":
        assert any("predictions USING COVERING INDEX predictions_by_confidence (model_id=? AND confidence>? AND "
                   "confidence<?)" in line for line in lines), lines
    else:  # per class, one range each, read in class order: no sort of the slice
        ranges = [i for i, line in enumerate(lines) if "predictions USING COVERING INDEX predictions_by_class "
                  "(model_id=? AND predicted_class=? AND confidence>? AND confidence<?)" in line]
        assert ranges and all("TEMP B-TREE" not in line for i in ranges for line in lines[i + 1:i + 2]), lines
    assert_no_table_scan(lines)


def test_the_sol_histogram_of_a_class_reads_one_range_with_an_archive_s_statistics(tmp_path, make_atlas_catalog):
    """With the statistics ANALYZE gives a 3.7 M-row catalog, the planner would rather skip-scan the
    primary key by class (a seek per sol bin: 50 ms) than read the 50-sol rows (1 ms)."""
    catalog = make_atlas_catalog(tmp_path)
    with sqlite3.connect(catalog) as setup:
        setup.execute("ANALYZE")
        setup.execute("UPDATE sqlite_stat1 SET stat = '487309 121828 145 145 6 2 1' WHERE idx = 'prediction_counts'")
    archive_like = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    q = images.Query.of(Filters(classes=("wheel",), min_confidence=0.8), NO_TEXT)
    lines = plans(archive_like, _facet, q, "sol")
    archive_like.close()
    assert lines == ["SEARCH prediction_counts USING PRIMARY KEY (sols=?)"], lines


def test_free_text_and_scene_queries_use_fts_and_keys(conn):
    text = Vocabulary(["crater"], {}).parse("ESP_000001")
    lines = plans(conn, images.page, images.Query.of(Filters(), text), MODELS, None, 20)
    assert any("VIRTUAL TABLE INDEX" in line for line in lines), lines
    for min_counts in ((("crater", 2),), (("crater", 2), ("dark dune", 1))):
        sq = scenes.scene_query(Filters(kind="scenes", min_counts=min_counts), NO_TEXT, 0.9, (HIRISE_MODEL,))
        lines = plans(conn, scenes.page, sq, None, 20) + plans(conn, scenes.class_counts, sq)
        lines += plans(conn, scenes.top_sources, sq, 5)
        assert any("scene_counts_by_class" in line for line in lines), lines
        assert not any(line.startswith("SCAN") for line in lines), lines
        # another class's range is read once (a list), not sought per scene of the first
        assert not any("CORRELATED" in line for line in lines), lines
        # the search route's page and total: the matching scenes found once, then read twice
        lines = plans(conn, scenes.page_and_total, sq, None, 20, {HIRISE_MODEL: 3})
        if len(min_counts) > 1:
            assert any("MATERIALIZE m" in line for line in lines), lines
            assert all(line in ("SCAN m", "USE TEMP B-TREE FOR ORDER BY") for line in lines if line.startswith(
                ("SCAN", "USE TEMP"))), lines
        assert not any("CORRELATED" in line for line in lines), lines
        # the facets: the matching scenes found once, each looked up by its key for the classes it holds
        lines = plans(conn, scenes.facets, sq, {HIRISE_MODEL: 3}, 5)
        if len(min_counts) > 1:
            assert lines.count("MATERIALIZE m") == 1 and "SEARCH c USING PRIMARY KEY (scene_id=? AND count_confidence=?)" \
                in lines, lines
            assert all(line == "SCAN m" or line.startswith("SCAN (subquery") or "TEMP B-TREE" in line
                       for line in lines if line.startswith(("SCAN", "USE"))), lines
    lines = plans(conn, scenes.page, scenes.scene_query(Filters(kind="scenes"), NO_TEXT, 0.9, (HIRISE_MODEL,)), None, 20)
    assert any("landmark_images_in_order" in line for line in lines) and not any("TEMP" in line for line in lines)


def test_one_class_scene_counts_read_the_pairs_table(conn):
    sq = scenes.scene_query(Filters(kind="scenes", min_counts=(("crater", 2),)), NO_TEXT, 0.9, (HIRISE_MODEL,))
    lines = plans(conn, scenes.class_counts, sq) + plans(conn, scenes.total, sq, {})
    assert lines and all("scene_class_pairs USING PRIMARY KEY" in line or "TEMP B-TREE" in line for line in lines), lines
