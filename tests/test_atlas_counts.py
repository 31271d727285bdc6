"""The Atlas's counts equal counting the rows, for any filters: image totals and facets from the count
tables (any sol range, any confidence threshold, on the grid or off it), scene totals and facets
from the scene count tables (one class, several, with free text or a source image)."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmars.catalog import Catalog, LandmarkCountRow, LandmarkImageRow, PredictionRow
from deepmars.catalog.count_tables import GRID_VALUES
from deepmars.catalog.landmarks import LandmarkStore
from deepmars.catalog.predictions import PredictionStore
from deepmars.web.atlas import images, scenes
from deepmars.web.atlas.filters import Filters
from deepmars.web.atlas.image_counts import ImageCounts, sol_pieces
from deepmars.web.atlas.vocabulary import ParsedText

MODELS, CLASSES, INSTRUMENTS = ("runs:/m1", "runs:/m2"), ("wheel", "ground", "drill holes", "sun"), ("ML", "MR", None)
SOLS = [None, -3, 0, 1, 9, 10, 11, 49, 50, 51, 99, 100, 149, 150, 499, 500, 501, 1234]
NEAR_GRID = [v for g in (0.05, 0.5, 0.93, 0.99, 0.995, 0.9995, 1.0) for v in (math.nextafter(g, 0), g)]
NO_TEXT = ParsedText((), (), ())


def _prediction_rows(rng: random.Random) -> list[PredictionRow]:
    rows = []
    for i in range(1500):
        confidence = rng.choice([rng.random(), rng.choice(NEAR_GRID), rng.choice(GRID_VALUES)])
        sol = rng.choice(SOLS) if i % 3 else rng.randrange(0, 600)
        rows.append(PredictionRow(rng.choice(MODELS), f"/a/{i:05d}.JPG", f"{i:064x}", 1, 1, 8, 8, sol,
                                  rng.choice(INSTRUMENTS), None, "{}", rng.choice(CLASSES), confidence, "[]",
                                  int(rng.random() < 0.2), "t"))
    return rows


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    path = tmp_path_factory.mktemp("counts") / "c.sqlite"
    rng = random.Random(7)
    with Catalog.open(path) as cat:
        PredictionStore(cat, MODELS[0]).write_batch(_prediction_rows(rng), [])
        store = LandmarkStore(cat, "runs:/h")
        for k in range(60):
            name, sha = f"ESP_{k:06d}_{rng.choice(['1000', '2000'])}_RED", f"{k:064x}"
            landmarks = rng.randrange(0, 40)
            image = LandmarkImageRow("runs:/h", sha, name, f"/h/{name}.png", 1, 1, 9, 9, 9, 9, landmarks, "", "{}",
                                     None, "t")
            counts = [LandmarkCountRow("runs:/h", sha, threshold, c, name, rng.choice([0, 0, 1, 2, 3, 5]))
                      for threshold in (0.5, 0.9) for c in ("crater", "dune", "streak")]
            store.write_image(image, [], counts)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield connection
    connection.close()


def _rows_counted(conn, q: images.Query, group: str) -> Counter:
    conds, params = images.row_conditions(q)
    rows = conn.execute(f"SELECT {group}, count(*) FROM predictions{images.where(conds)} GROUP BY 1", params)
    return Counter({k: n for k, n in rows if k is not None or group == "NULL"})


THRESHOLDS = st.sampled_from([0.0, *NEAR_GRID, 0.93, 0.935, 0.3333, 0.99951]) | st.floats(0.0, 1.0)
IMAGE_FILTERS = st.builds(
    Filters, models=st.lists(st.sampled_from(MODELS), max_size=2, unique=True).map(tuple),
    classes=st.lists(st.sampled_from(CLASSES), max_size=2, unique=True).map(tuple),
    instruments=st.lists(st.sampled_from(["ML", "MR"]), max_size=2, unique=True).map(tuple),
    sol_min=st.none() | st.integers(0, 700), sol_max=st.none() | st.integers(0, 700),
    min_confidence=THRESHOLDS, abstained=st.booleans())


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters=IMAGE_FILTERS)
def test_image_totals_and_facets_equal_counting_the_rows(conn, filters):
    q = images.Query.of(filters, NO_TEXT)
    counts = ImageCounts(conn, q, MODELS)
    assert counts.total() == sum(_rows_counted(conn, q, "NULL").values())
    for facet, group in (("model", "model_id"), ("class", "predicted_class"),
                         ("instrument", "IFNULL(instrument, '')"), ("sol", "CASE WHEN sol >= 0 THEN sol / 50 END")):
        got = Counter({k: n for k, n in counts.facet(facet).items() if n})
        assert got == _rows_counted(conn, q.without(facet), group), facet


def test_off_grid_slices_split_by_instrument_for_a_model_of_one_instrument_or_none(tmp_path):
    """The slice below a grid value is counted per class, per instrument but the last, the last being
    the rest: a model whose rows have one instrument (or none) has nothing but the rest."""
    rng = random.Random(11)
    rows = [PredictionRow(model, f"/{model[-2:]}/{i}.JPG", f"{model[-2:]}{i:062x}", 1, 1, 8, 8, rng.randrange(0, 300),
                          instrument(i), None, "{}", rng.choice(CLASSES), 0.93 + rng.random() * 0.01, "[]",
                          int(rng.random() < 0.2), "t")
            for model, instrument in (("runs:/solo", lambda i: "MH"), ("runs:/none", lambda i: None),
                                      ("runs:/mixed", lambda i: rng.choice(INSTRUMENTS)))
            for i in range(200)]
    path = tmp_path / "c.sqlite"
    with Catalog.open(path) as cat:
        PredictionStore(cat, "runs:/solo").write_batch(rows, [])
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    models = ("runs:/mixed", "runs:/none", "runs:/solo")
    for threshold, sols in ((0.935, (None, None)), (0.9349, (20, 250)), (0.9371, (None, 120))):
        q = images.Query.of(Filters(min_confidence=threshold, sol_min=sols[0], sol_max=sols[1]), NO_TEXT)
        counts = ImageCounts(conn, q, models)
        assert counts.total() == sum(_rows_counted(conn, q, "NULL").values())
        for facet, group in (("model", "model_id"), ("class", "predicted_class"),
                             ("instrument", "IFNULL(instrument, '')")):
            assert Counter({k or "": n for k, n in counts.facet(facet).items() if n}) == \
                _rows_counted(conn, q, group), (threshold, facet)
    conn.close()


@given(lo=st.integers(0, 5000), length=st.integers(0, 5000))
def test_sol_pieces_tile_a_range_exactly_with_at_most_five_ranges(lo, length):
    hi = lo + length
    pieces = sol_pieces(lo, hi)
    covered = [s for width, first, last in pieces for b in range(first, last + 1) for s in range(b * width, (b + 1) * width)]
    assert covered == list(range(lo, hi + 1)) and len(pieces) <= 5


def _scene_truth(conn, q: scenes.SceneQuery) -> dict[int, tuple]:
    """id -> (source_image, landmarks, model, counts) of the scenes q matches, by brute force."""
    out = {}
    for scene_id, model, sha, source, landmarks in conn.execute(
            "SELECT id, model_id, sha256, source_image, landmarks FROM landmark_images"):
        counts = dict(conn.execute("SELECT class, n FROM landmark_counts WHERE sha256 = ? AND count_confidence = ?",
                                   (sha, q.count_confidence)).fetchall())
        if q.filters.models and model not in q.filters.models:
            continue
        if q.filters.source_image and source != q.filters.source_image:
            continue
        if q.fts and "2000" not in source.split("_"):
            continue
        if all(counts.get(c, 0) >= n for c, n in q.min_counts):
            out[scene_id] = (source, landmarks, model, counts)
    return out


SCENE_FILTERS = st.builds(
    Filters, kind=st.just("scenes"), models=st.sampled_from([(), ("runs:/h",), ("runs:/none",)]),
    min_counts=st.lists(st.tuples(st.sampled_from(["crater", "dune", "streak", "none"]), st.integers(1, 4)),
                        max_size=3, unique_by=lambda item: item[0]).map(tuple),
    source_image=st.none() | st.sampled_from(["ESP_000003_1000_RED", "ESP_000004_2000_RED"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters=SCENE_FILTERS, threshold=st.sampled_from([0.5, 0.9]), text=st.booleans())
def test_scene_totals_facets_and_pages_equal_the_brute_force_answer(conn, filters, threshold, text):
    parsed = ParsedText((), ("2000",), ()) if text else NO_TEXT
    q = scenes.scene_query(filters, parsed, threshold, ("runs:/h",))
    truth = _scene_truth(conn, q)
    scene_rows = {"runs:/h": 60}
    assert scenes.total(conn, q, scene_rows) == len(truth)
    classes = Counter(c for _, _, _, counts in truth.values() for c, n in counts.items() if n >= 1)
    assert Counter({k: n for k, n in scenes.class_counts(conn, q).items() if n}) == classes
    unfiltered = _scene_truth(conn, scenes.SceneQuery(filters.without("model"), q.min_counts, q.fts, threshold,
                                                      q.models))
    per_model, total = scenes.model_counts_and_total(conn, q, scene_rows)
    assert Counter({k: n for k, n in per_model.items() if n}) == Counter(m for _, _, m, _ in unfiltered.values())
    assert total == len(truth)
    assert scenes.facets(conn, q, scene_rows, 5) == (per_model, total, scenes.class_counts(conn, q),
                                                      scenes.top_sources(conn, q, 5))
    ranked = sorted(((-landmarks, source) for source, landmarks, _, _ in truth.values()))[:5]
    assert list(scenes.top_sources(conn, q, 5).items()) == [(s, -n) for n, s in ranked]
    ordered, after, seen = sorted(truth, key=lambda i: (truth[i][0], i)), None, []
    while True:  # as the search route pages: a page and the total of the same snapshot
        page, total = scenes.page_and_total(conn, q, after, 7, scene_rows)
        assert total == len(truth)
        seen += [r[0] for r in page.rows]
        if page.next is None:
            break
        after = scenes.Cursor.decode(page.next, str)
    assert seen == ordered
    if ordered:  # a cursor past the last scene: no page, the same total
        last = scenes.Cursor(truth[ordered[-1]][0], ordered[-1])
        page, total = scenes.page_and_total(conn, q, last, 7, scene_rows)
        assert (page.rows, page.next, total) == ([], None, len(truth))
