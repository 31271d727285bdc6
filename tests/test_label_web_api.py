"""The labeling API through TestClient: tokens, leases, labels, Later, undo, images, bad input."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from support import LABEL_HOSTILE, bad_files

from deepmars.catalog.labels import LabelStore
from deepmars.labeling.cli import open_queue
from deepmars.labeling.options import label_options


@pytest.fixture
def app_and_tokens(tmp_path, make_queue, label_app):
    cfg, tokens = make_queue(tmp_path)
    return cfg, TestClient(label_app(cfg)), {u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()}


def test_every_api_route_needs_a_user_token(app_and_tokens, label_events):
    cfg, client, _ = app_and_tokens
    for method, url in [("get", "/api/queue"), ("post", "/api/next"), ("post", "/api/items/1/later"),
                        ("post", "/api/undo"), ("get", "/api/progress"), ("get", "/api/disagreements"),
                        ("post", "/api/release"), ("get", "/files/items/1")]:
        assert getattr(client, method)(url).status_code == 401, url
        assert getattr(client, method)(url, headers={"Authorization": "Bearer nope"}).status_code == 401, url
    assert client.post("/api/items/1/label", json={"class_id": 1}).status_code == 401
    assert label_events(cfg) == []


def test_two_users_label_disjoint_images_and_every_answer_is_stored(app_and_tokens, label_events):
    cfg, client, auth = app_and_tokens
    queue = client.get("/api/queue", headers=auth["alice"]).json()
    assert queue["user"] == "alice" and [c["name"] for c in queue["classes"]][3] == LABEL_HOSTILE
    assert queue["show_suggestion"] is False and queue["progress"]["left"] == 6
    seen = {"alice": [], "bob": []}
    for _ in range(3):
        for user in seen:
            item = client.post("/api/next", headers=auth[user]).json()["item"]
            seen[user].append(item["id"])
            reply = client.post(f"/api/items/{item['id']}/label", json={"class_id": 2}, headers=auth[user])
            assert reply.status_code == 200 and reply.json()["item_id"] == item["id"]
    assert not set(seen["alice"]) & set(seen["bob"])
    assert sorted(e[:4] for e in label_events(cfg)) == sorted(
        [(i, u, "label", 2) for u, ids in seen.items() for i in ids])
    done = client.post("/api/next", headers=auth["alice"]).json()
    assert done["item"] is None and done["progress"]["labeled"] == 6 and done["progress"]["mine"] == 3


def test_a_reload_gets_the_same_leased_image_and_release_frees_it(app_and_tokens):
    _, client, auth = app_and_tokens
    first = client.post("/api/next", headers=auth["alice"]).json()["item"]
    assert client.post("/api/next", headers=auth["alice"]).json()["item"]["id"] == first["id"]
    client.post("/api/release", headers=auth["alice"])
    assert client.post("/api/next", headers=auth["bob"]).json()["item"]["id"] == first["id"]


def test_later_and_undo(app_and_tokens, label_events):
    cfg, client, auth = app_and_tokens
    first = client.post("/api/next", headers=auth["alice"]).json()["item"]
    reply = client.post(f"/api/items/{first['id']}/later", headers=auth["alice"]).json()
    assert reply["progress"]["skipped"] == 1
    second = client.post("/api/next", headers=auth["alice"]).json()["item"]
    assert second["id"] != first["id"]
    client.post(f"/api/items/{second['id']}/label", json={"class_id": 1}, headers=auth["alice"])
    undone = client.post("/api/undo", headers=auth["alice"]).json()
    assert undone["item"]["id"] == second["id"] and undone["progress"]["labeled"] == 0
    assert client.post("/api/next", headers=auth["alice"]).json()["item"]["id"] == second["id"]
    assert label_events(cfg) == [(first["id"], "alice", "later", None, False),
                                 (second["id"], "alice", "label", 1, True)]
    assert client.post("/api/undo", headers=auth["bob"]).json()["item"] is None  # bob has nothing to undo


def test_bad_requests_change_nothing(app_and_tokens, label_events):
    cfg, client, auth = app_and_tokens
    assert client.post("/api/items/999/label", json={"class_id": 1}, headers=auth["alice"]).status_code == 404
    assert client.post("/api/items/1/label", json={"class_id": 9}, headers=auth["alice"]).status_code == 422
    assert client.post("/api/items/1/label", json={"path": "/etc/passwd"}, headers=auth["alice"]).status_code == 422
    assert client.get("/files/items/-1", headers=auth["alice"]).status_code == 404
    assert client.get("/files/items/99999999999999999999", headers=auth["alice"]).status_code in (404, 422)
    assert client.get("/files/items/..%2f..%2fetc%2fpasswd", headers=auth["alice"]).status_code in (404, 422)
    assert label_events(cfg) == []


def test_images_are_served_by_item_id_and_an_undecodable_one_is_marked(tmp_path, make_queue, write_files, label_app):
    cfg, tokens = make_queue(tmp_path, n=2, check_images=False)
    write_files(tmp_path / "images", {"broken.jpg": bad_files()["truncated.jpg"]})
    open_queue(label_options({"command": "add", **cfg})).close()  # added unchecked: found when shown
    client = TestClient(label_app(cfg))
    auth = {"Authorization": f"Bearer {tokens['alice']}"}
    ok = client.get("/files/items/1", headers=auth)
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg" and ok.content[:2] == b"\xff\xd8"
    broken = client.get("/files/items/3", headers=auth)
    assert broken.status_code == 415 and "marked unlabelable" in broken.json()["detail"]
    progress = client.get("/api/progress", headers=auth).json()
    assert progress["unlabelable"] == 1 and progress["left"] == 2
    assert client.get("/files/items/3", headers=auth).status_code == 415


def test_a_file_linked_out_of_its_folder_is_refused(tmp_path, make_queue, label_app):
    cfg, tokens = make_queue(tmp_path, n=1)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((tmp_path / "images" / "img00.jpg").read_bytes())
    (tmp_path / "images" / "img00.jpg").unlink()
    (tmp_path / "images" / "img00.jpg").symlink_to(secret)
    client = TestClient(label_app(cfg))
    assert client.get("/files/items/1", headers={"Authorization": f"Bearer {tokens['alice']}"}).status_code == 403


def test_the_pages_escape_and_carry_no_data(app_and_tokens):
    _, client, _ = app_and_tokens
    page = client.get("/")
    assert page.status_code == 200 and "deepmars labeling" in page.text and "q.sqlite" in page.text
    assert LABEL_HOSTILE not in page.text  # class names come through the API, as text
    assert client.get("/review").status_code == 200
    assert client.get("/static/label/label.js").status_code == 200
    assert client.get("/static/dom.js").status_code == 200


def test_double_labeling_shows_disagreements(tmp_path, make_queue, label_app):
    cfg, tokens = make_queue(tmp_path, n=1, labels_per_item=2)
    client = TestClient(label_app(cfg))
    auth = {u: {"Authorization": f"Bearer {t}"} for u, t in tokens.items()}
    a = client.post("/api/next", headers=auth["alice"]).json()["item"]
    b = client.post("/api/next", headers=auth["bob"]).json()["item"]
    assert a["id"] == b["id"]
    client.post(f"/api/items/{a['id']}/label", json={"class_id": 1}, headers=auth["alice"])
    client.post(f"/api/items/{a['id']}/label", json={"class_id": 2}, headers=auth["bob"])
    assert client.get("/api/disagreements", headers=auth["alice"]).json() == [
        {"item_id": a["id"], "name": "img00.jpg", "labels": {"alice": "crater", "bob": "dark dune"}}]


def test_a_file_name_that_is_not_utf8_is_queued_shown_and_labeled(tmp_path, make_queue, label_app, label_events):
    cfg, tokens = make_queue(tmp_path, n=1)
    raw = os.fsencode(tmp_path / "images") + b"/caf\xff.jpg"
    with open(raw, "wb") as f:
        f.write((tmp_path / "images" / "img00.jpg").read_bytes())
    open_queue(label_options({"command": "add", **cfg})).close()
    with LabelStore.open(cfg["queue"]) as store:
        odd = next(it for it in store.items() if it.name != "img00.jpg")
    assert odd.name == "caf\\xff.jpg" and odd.unlabelable is None  # stored as the catalog does, decoded by its bytes
    client = TestClient(label_app(cfg))
    auth = {"Authorization": f"Bearer {tokens['alice']}"}
    shown = client.get(f"/files/items/{odd.item_id}", headers=auth)
    assert shown.status_code == 200 and shown.content[:2] == b"\xff\xd8"
    assert client.post(f"/api/items/{odd.item_id}/label", json={"class_id": 1}, headers=auth).status_code == 200
    assert label_events(cfg) == [(odd.item_id, "alice", "label", 1, False)]
