"""The Atlas JSON API and pages through FastAPI's TestClient: every route, counts equal to SQL,
keyset paging, free text, escaping, and files served only from the catalog's own paths."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ATLAS_HOSTILE, ATLAS_SCENES, HIRISE_MODEL, MSL_MODEL, N_MSL


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, make_atlas_catalog):
    return make_atlas_catalog(tmp_path_factory.mktemp("atlas"))


@pytest.fixture(scope="module")
def client(catalog, tmp_path_factory, atlas_app):
    with TestClient(atlas_app(catalog, tmp_path_factory.mktemp("cache")), raise_server_exceptions=False) as c:
        yield c


def sql(catalog, statement, params=()):
    with sqlite3.connect(catalog) as conn:
        return conn.execute(statement, params).fetchall()


def all_pages(client, query: str, limit: int = 7) -> list[dict]:
    rows, url = [], f"/api/search?{query}&limit={limit}"
    while url:
        page = client.get(url).json()
        rows += page["results"]
        url = f"/api/search?{query}&limit={limit}&after={page['next']}" if page["next"] else None
    return rows


def test_catalog_summary_lists_models_classes_and_kinds(client):
    body = client.get("/api/catalog").json()
    models = {m["model_id"]: m for m in body["models"]}
    assert models[MSL_MODEL]["images"] == N_MSL and models[MSL_MODEL]["scenes"] == 0
    assert models[HIRISE_MODEL]["scenes"] == len(ATLAS_SCENES) and models[HIRISE_MODEL]["images"] == 12
    assert body["count_confidence"] == 0.9 and body["max_counts"]["crater"] == 3


@pytest.mark.parametrize("query, where", [
    ("", "abstained = 0"),
    ("class=wheel", "abstained = 0 AND predicted_class = 'wheel'"),
    ("class=wheel&class=apxs&min_confidence=0.8", "abstained = 0 AND predicted_class IN ('wheel', 'apxs') "
                                                  "AND confidence >= 0.8"),
    ("instrument=MH&abstained=true", "instrument = 'MH'"),
    ("sol_min=40&sol_max=260&min_confidence=0.7", "abstained = 0 AND sol BETWEEN 40 AND 260 AND confidence >= 0.7"),
    ("sol_min=50&sol_max=99", "abstained = 0 AND sol BETWEEN 50 AND 99"),  # exactly one histogram bin
    (f"model={HIRISE_MODEL}&source_image={ATLAS_SCENES[0]}", f"abstained = 0 AND source_image = '{ATLAS_SCENES[0]}'"),
    # any threshold is exact: off the slider's 0.05 steps, and off the count tables' grid
    ("min_confidence=0.93", "abstained = 0 AND confidence >= 0.93"),
    ("min_confidence=0.905&sol_min=20&sol_max=333&instrument=MR", "abstained = 0 AND confidence >= 0.905 "
                                                                   "AND sol BETWEEN 20 AND 333 AND instrument = 'MR'"),
])
def test_pages_walk_every_match_best_first_and_totals_and_facets_agree(client, catalog, query, where):
    expected = sql(catalog, f"SELECT id FROM predictions WHERE {where} ORDER BY confidence DESC, id DESC")
    rows = all_pages(client, query)
    assert [r["id"] for r in rows] == [e[0] for e in expected]
    body = client.get(f"/api/search?{query}").json()
    assert body["total"] == len(expected) and body["min_confidence"] == float(dict(
        p.split("=") for p in query.split("&") if p).get("min_confidence", 0))
    facets = client.get(f"/api/facets?{query}").json()
    assert facets["total"] == len(expected)
    if "class=" not in query:  # then the class facet counts the results themselves
        got = {v["value"]: v["count"] for v in facets["class"]}
        assert got == dict(Counter(r["predicted_class"] for r in rows))


def test_a_facet_counts_ignore_its_own_selection_and_follow_the_others(client, catalog):
    facets = client.get("/api/facets?class=wheel&instrument=ML").json()
    classes = {v["value"]: v["count"] for v in facets["class"]}
    assert classes == dict(sql(catalog, "SELECT predicted_class, count(*) FROM predictions WHERE abstained = 0 AND "
                                        "instrument = 'ML' GROUP BY 1"))
    instruments = {v["value"]: v["count"] for v in facets["instrument"]}
    assert instruments == dict(sql(catalog, "SELECT instrument, count(*) FROM predictions WHERE abstained = 0 AND "
                                            "predicted_class = 'wheel' GROUP BY 1"))
    bins = {b["start"]: b["count"] for b in facets["sol"]}
    assert bins == dict(sql(catalog, "SELECT sol / 50 * 50, count(*) FROM predictions WHERE abstained = 0 AND "
                                     "predicted_class = 'wheel' AND instrument = 'ML' GROUP BY 1"))


def test_free_text_names_classes_through_synonyms_and_searches_file_names(client, catalog):
    body = client.get("/api/search?q=drill+hole").json()
    assert body["text"]["classes"] == ["drill holes"] and body["total"] == sql(
        catalog, "SELECT count(*) FROM predictions WHERE predicted_class = 'drill holes' AND abstained = 0")[0][0]
    assert {r["predicted_class"] for r in body["results"]} == {"drill holes"}
    body = client.get("/api/search?q=0036MR").json()  # a file name prefix, through FTS5
    assert [r["file_name"] for r in body["results"]] == ["0036MR0000000000000004E01_DRCL.JPG"]
    scenes = client.get("/api/search?kind=scenes&q=craters").json()
    assert scenes["text"]["classes"] == ["crater"]
    assert [r["source_image"] for r in scenes["results"]] == ATLAS_SCENES[:2]
    assert client.get("/api/search?q=site3").json()["total"] > 0  # stored metadata


def test_typos_get_the_closest_class_names(client):
    assert client.get("/api/search?q=cratr").json()["text"]["suggestions"] == ["crater"]
    assert "drill holes" in client.get("/api/search?q=dril+hols").json()["text"]["suggestions"]


def test_scenes_filter_by_minimum_landmarks_of_each_class(client):
    def sources(query):
        return [r["source_image"] for r in client.get(f"/api/search?kind=scenes&{query}").json()["results"]]
    assert sources("min_count=crater:3") == [ATLAS_SCENES[0]]
    assert sources("min_count=crater:1&min_count=dark+dune:2") == [ATLAS_SCENES[1]]
    assert sources("class=other") == [ATLAS_SCENES[2]]
    assert sources("") == ATLAS_SCENES
    first = client.get("/api/search?kind=scenes&min_count=crater:1").json()["results"][0]
    assert first["counts"] == {"crater": 3}  # the dark dune at 0.8 is below the count confidence
    facets = client.get("/api/facets?kind=scenes&min_count=crater:1").json()
    assert {v["value"]: v["count"] for v in facets["class"]} == {"crater": 2, "dark dune": 1}


def test_detail_routes_give_the_row_its_posteriors_and_landmarks(client, catalog):
    image_id = sql(catalog, "SELECT id FROM predictions WHERE source_image = ? LIMIT 1", (ATLAS_SCENES[0],))[0][0]
    image = client.get(f"/api/images/{image_id}").json()
    assert image["top_k"][0]["class"] == image["predicted_class"] and image["scene"] == "/scenes/1"
    scene = client.get("/api/scenes/1").json()
    assert [(m["x"], m["predicted_class"], m["counted"]) for m in scene["landmarks"]] == [
        (20, "crater", True), (150, "crater", True), (250, "crater", True), (60, "dark dune", False)]
    assert scene["working_width"] == 400 and scene["counts"] == {"crater": 3}
    for url in ("/api/images/999999", "/api/scenes/999", "/files/images/999999/thumbnail",
                "/files/scenes/1/landmarks/99", "/images/abc"):
        assert client.get(url).status_code in (404, 422), url


def test_files_are_jpeg_renditions_cached_on_disk(client, catalog, tmp_path):
    for url in ("/files/images/1/thumbnail", "/files/images/1/display", "/files/scenes/1/thumbnail",
                "/files/scenes/1/display", "/files/scenes/1/landmarks/2"):
        response = client.get(url)
        assert response.status_code == 200 and response.content[:2] == b"\xff\xd8", url
    cache = client.app.state.settings.cache_dir
    assert len(list(cache.rglob("*.jpg"))) >= 4
    assert client.get("/files/images/1/original").status_code == 422  # only the two renditions exist


def test_export_streams_the_whole_result_set_as_csv(client, catalog):
    response = client.get("/api/export.csv?class=wheel&abstained=true")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert len(rows) == sql(catalog, "SELECT count(*) FROM predictions WHERE predicted_class = 'wheel'")[0][0]
    assert {r["predicted_class"] for r in rows} == {"wheel"} and "path" in rows[0]
    scenes = list(csv.DictReader(io.StringIO(client.get("/api/export.csv?kind=scenes").text)))
    assert [r["source_image"] for r in scenes] == ATLAS_SCENES


def test_pages_and_openapi_are_served(client):
    for url in ("/", "/images/1", "/scenes/1", "/static/dom.js", "/static/atlas/search.js", "/docs"):
        assert client.get(url).status_code == 200, url
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/facets", "/api/catalog", "/api/images/{image_id}", "/api/scenes/{scene_id}",
            "/api/export.csv"} <= set(paths)


def test_hostile_names_come_back_as_data_and_pages_escape(client, catalog, tmp_path, atlas_app):
    body = client.get("/api/search", params={"class": ATLAS_HOSTILE, "abstained": "true"}).json()
    assert body["total"] > 0 and {r["predicted_class"] for r in body["results"]} == {ATLAS_HOSTILE}
    named = tmp_path / "<img src=x onerror=alert(1)>.sqlite"
    named.write_bytes(catalog.read_bytes())
    with TestClient(atlas_app(named, tmp_path / "cache")) as other:
        html = other.get("/").text
    assert "&lt;img src=x onerror=alert(1)&gt;.sqlite" in html and "<img src=x" not in html
    scripts = "".join(client.get(f"/static/{p}").text for p in ("dom.js", "atlas/search.js", "atlas/detail.js"))
    assert "innerHTML" not in scripts and "insertAdjacentHTML" not in scripts


def _point_row_at(catalog, image_id: int, path: str) -> None:
    with sqlite3.connect(catalog) as conn:
        conn.execute("UPDATE predictions SET path = ?, sha256 = ? WHERE id = ?", (path, f"moved{image_id}", image_id))
    conn.close()


def test_files_outside_the_catalogs_folders_are_refused(tmp_path, make_atlas_catalog, atlas_app):
    catalog = make_atlas_catalog(tmp_path)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((tmp_path / "images" / "msl").glob("*.JPG").__next__().read_bytes())
    link = tmp_path / "images" / "msl" / "link.JPG"
    os.symlink(secret, link)
    _point_row_at(catalog, 1, str(tmp_path / "images" / "msl" / ".." / ".." / "secret.jpg"))
    _point_row_at(catalog, 2, "/etc/passwd")
    _point_row_at(catalog, 3, str(link))
    _point_row_at(catalog, 4, "images/../secret.jpg")  # relative: to the catalog's folder
    with TestClient(atlas_app(catalog, tmp_path / "cache")) as client:
        assert client.get("/files/images/1/thumbnail").status_code == 200  # '..' that stays inside its folder
        assert client.get("/files/images/2/thumbnail").status_code == 415  # /etc/passwd: in /etc, not an image
        assert client.get("/files/images/3/thumbnail").status_code == 403  # a symlink out of its folder
        assert client.get("/files/images/4/thumbnail").status_code == 200  # (no roots: its own folder)
    roots = (str(tmp_path / "images"),)
    with TestClient(atlas_app(catalog, tmp_path / "cache2", image_roots=list(roots))) as client:
        for image_id in (1, 2, 3, 4):
            response = client.get(f"/files/images/{image_id}/thumbnail")
            assert response.status_code == 403 and "outside the image roots" in response.text, image_id
        assert client.get("/files/images/5/thumbnail").status_code == 200
        assert client.get("/files/images/..%2F..%2Fetc%2Fpasswd/thumbnail").status_code in (404, 422)
    (tmp_path / "images" / "msl").joinpath(sql(catalog, "SELECT path FROM predictions WHERE id = 6")[0][0]).unlink()
    with TestClient(atlas_app(catalog, tmp_path / "cache3")) as client:
        assert client.get("/files/images/6/thumbnail").status_code == 404


FACET_VALUES = st.sampled_from(["wheel", "crater", "apxs", "drill holes", ATLAS_HOSTILE, "", "x" * 300, "ä'\"%_*",
                                "\x00"])
QUERIES = st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["images", "scenes", "other"]),
    "class": st.lists(FACET_VALUES, max_size=3),
    "model": st.lists(st.sampled_from([MSL_MODEL, HIRISE_MODEL, "nope"]), max_size=2),
    "instrument": st.lists(st.sampled_from(["ML", "MH", "ZZ", ""]), max_size=2),
    "sol_min": st.integers(-5, 3000), "sol_max": st.integers(-5, 3000),
    "source_image": st.sampled_from(ATLAS_SCENES + ["", "ESP_*"]),
    "min_confidence": st.floats(-0.5, 1.5) | st.just(float("nan")),
    "abstained": st.sampled_from(["true", "false", "maybe"]),
    "min_count": st.lists(st.sampled_from(["crater:1", "crater:x", ":3", "dark dune:2", "a:b:3"]), max_size=2),
    "q": st.text(max_size=40) | st.sampled_from(['"', "NEAR(", "crater OR", "*", "drill hole", "0045MH", "-x"]),
    "after": st.sampled_from(["", "abc", "WzAuOSwgMV0", "WyJFU1AiLCAxXQ", "bnVsbA"]),
    "limit": st.integers(-1, 600),
})


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES, route=st.sampled_from(["/api/search", "/api/facets", "/api/export.csv"]))
def test_no_filter_combination_is_a_server_error(client, query, route):
    response = client.get(route, params=query)
    assert response.status_code in (200, 422), (route, query, response.text[:500])


def test_a_file_whose_name_is_not_utf8_is_served_by_its_stored_name(tmp_path, make_atlas_catalog, atlas_app):
    catalog = make_atlas_catalog(tmp_path)
    good = next((tmp_path / "images" / "msl").glob("*.JPG"))
    odd = os.fsencode(good.parent) + b"/caf\xff.JPG"
    with open(odd, "wb") as f:
        f.write(good.read_bytes())
    _point_row_at(catalog, 1, str(good.parent / "caf\\xff.JPG"))  # as the catalog stores such a name
    with TestClient(atlas_app(catalog, tmp_path / "cache")) as client:
        assert client.get("/files/images/1/thumbnail").status_code == 200
