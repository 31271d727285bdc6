"""The label store: leases keep two users apart, every answer is history, orders, class lists, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import QUEUE_CLASSES, item

from deepmars.catalog import Catalog
from deepmars.catalog.label_schema import LABEL_TABLES
from deepmars.catalog.labels import ClassList, LabelStore
from deepmars.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += timedelta(seconds=seconds)


def store(tmp_path, n=6, per_item=1, **kw) -> LabelStore:
    s = LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, per_item, **kw)
    s.add_items([item(i) for i in range(n)])
    return s


def test_every_table_has_its_row_type_and_key(tmp_path):
    with store(tmp_path) as s:
        for name, spec in LABEL_TABLES.items():
            info = list(s.conn.execute(f"PRAGMA table_info({name})"))
            assert tuple(r[1] for r in info) == spec.columns, name
            assert tuple(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]) == spec.key, name


def test_two_users_get_disjoint_images_and_a_reload_shows_the_same_one(tmp_path):
    with store(tmp_path) as s:
        a, b = s.next_item("alice"), s.next_item("bob")
        assert a.item_id != b.item_id
        assert s.next_item("alice").item_id == a.item_id  # a reload: the same image, still hers
        seen = {"alice": [], "bob": []}
        for _ in range(3):
            for user in seen:
                it = s.next_item(user)
                seen[user].append(it.item_id)
                s.label(it.item_id, user, 1)
        assert not set(seen["alice"]) & set(seen["bob"])
        assert s.progress().labeled == 6 and s.next_item("alice") is None


def test_an_expired_lease_goes_back_to_the_queue(tmp_path):
    clock = Clock()
    with store(tmp_path, n=1, clock=clock, lease_s=60) as s:
        first = s.next_item("alice")
        assert s.next_item("bob") is None  # leased to alice
        clock.advance(61)
        assert s.next_item("bob").item_id == first.item_id


def test_later_puts_the_image_after_all_others_and_undo_takes_it_back(tmp_path):
    with store(tmp_path, n=3) as s:
        first = s.next_item("alice")
        s.later(first.item_id, "alice")
        p = s.progress()
        assert (p.skipped, p.left, p.labeled) == (1, 2, 0)
        order = []
        while (it := s.next_item("alice")) is not None:
            order.append(it.item_id)
            s.label(it.item_id, "alice", 2)
        assert order[-1] == first.item_id and len(order) == 3  # shown again, at the end
        undone = s.undo("alice")
        assert undone.item_id == first.item_id
        assert s.next_item("alice").item_id == first.item_id  # leased back to her
        history = s.history(first.item_id)
        assert [(e.action, e.undone_at is not None) for e in history] == [("later", False), ("label", True)]
        assert s.progress().labeled == 2


def test_every_label_is_kept_with_user_and_time_and_the_latest_counts(tmp_path):
    with store(tmp_path, n=1) as s:
        it = s.next_item("alice")
        s.label(it.item_id, "alice", 1)
        s.label(it.item_id, "alice", 2)  # a correction: a new event, the old one stays
        events = s.history(it.item_id)
        assert [(e.user, e.class_name) for e in events] == [("alice", "crater"), ("alice", "dark dune")]
        assert all(e.created_at.endswith("Z") for e in events)
        assert [d.class_name for d in s.decided()] == ["dark dune"]


def test_double_labeling_gives_one_image_to_two_users_and_lists_disagreements(tmp_path):
    with store(tmp_path, n=2, per_item=2) as s:
        a = s.next_item("alice")
        b = s.next_item("bob")
        assert a.item_id == b.item_id  # two labels wanted: both may see it
        c = s.next_item("carol")
        assert c.item_id != a.item_id  # but not a third person
        s.label(a.item_id, "alice", 1)
        s.label(a.item_id, "bob", 2)
        assert s.next_item("alice").item_id == c.item_id  # she never gets her own image again
        [d] = s.disagreements()
        assert d.item_id == a.item_id and d.labels == {"alice": "crater", "bob": "dark dune"}
        assert s.decided() == []  # a disagreement is never exported
        s.review(a.item_id, "carol", 1)
        assert s.disagreements() == [] and [r.class_name for r in s.decided()] == ["crater"]


def test_agreeing_double_labels_are_decided_only_with_both(tmp_path):
    with store(tmp_path, n=1, per_item=2) as s:
        it = s.next_item("alice")
        s.label(it.item_id, "alice", 0)
        assert s.decided() == [] and s.progress().labeled == 0
        s.label(s.next_item("bob").item_id, "bob", 0)
        assert [(r.class_id, r.users) for r in s.decided()] == [(0, "alice,bob")]


@pytest.mark.parametrize("order, expected", [
    ("least_confident", [1, 2, 0, 3]),  # lowest top-1 first, no posteriors last
    ("margin", [2, 1, 0, 3]),  # smallest top-2 gap first
    ("entropy", [1, 2, 0, 3]),  # most spread first
    ("random", [0, 1, 2, 3]),  # by the random key
])
def test_orders(tmp_path, order, expected):
    s = LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 1)
    s.add_items([item(0, [0.9, 0.05, 0.05]), item(1, [0.4, 0.3, 0.3]), item(2, [0.45, 0.45, 0.1]), item(3)])
    got = []
    while (it := s.next_item("u", order)) is not None:
        got.append(int(it.name[3:6]))
        s.label(it.item_id, "u", 0)
    assert got == expected
    s.close()


def test_new_posteriors_rerank_without_touching_labels(tmp_path):
    with LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 1) as s:
        s.add_items([item(0, [0.9, 0.05, 0.05]), item(1, [0.4, 0.3, 0.3])])
        s.label(1, "u", 2)
        assert s.add_items([item(0, [0.34, 0.33, 0.33]), item(1, [0.9, 0.05, 0.05]), item(2)]) == (1, 2)
        assert s.item(1).confidence == pytest.approx(0.34) and s.item(1).n_labels == 1
        assert [r.class_id for r in s.decided()] == [2]


def test_an_unlabelable_image_is_skipped_with_its_reason(tmp_path):
    with store(tmp_path, n=2) as s:
        first = s.next_item("alice")
        s.mark_unlabelable(first.item_id, "corrupt or truncated image data")
        assert s.next_item("alice").item_id != first.item_id
        p = s.progress()
        assert (p.unlabelable, p.left) == (1, 1)
        assert s.item(first.item_id).unlabelable == "corrupt or truncated image data"


def test_a_changed_class_list_is_refused_with_both_lists(tmp_path):
    store(tmp_path).close()
    other = ClassList(((0, "other"), (1, "crater"), (2, "bright dune")), "other.csv")
    with pytest.raises(DataError) as exc:
        LabelStore.open(tmp_path / "q.sqlite", other)
    msg = str(exc.value)
    assert "2 dark dune" in msg and "2 bright dune" in msg and "other.csv" in msg
    with LabelStore.open(tmp_path / "q.sqlite") as s:  # unchanged
        assert s.classes.entries == QUEUE_CLASSES.entries
    with pytest.raises(ConfigError, match="labels_per_item"):
        LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 2)


def test_labels_of_unknown_classes_or_items_are_refused(tmp_path):
    with store(tmp_path, n=1) as s:
        with pytest.raises(ConfigError, match="class id 7 is not in"):
            s.label(1, "alice", 7)
        with pytest.raises(DataError, match="no item 99"):
            s.label(99, "alice", 1)
        assert s.history() == []


def test_a_catalog_or_foreign_file_is_not_taken_for_a_queue(tmp_path):
    Catalog.open(tmp_path / "catalog.sqlite").close()
    before = (tmp_path / "catalog.sqlite").read_bytes()
    with pytest.raises(DataError, match="not a deepmars label queue"):
        LabelStore.open(tmp_path / "catalog.sqlite", QUEUE_CLASSES)
    assert (tmp_path / "catalog.sqlite").read_bytes() == before
    with pytest.raises(DataError, match="needs its class list"):
        LabelStore.open(tmp_path / "new.sqlite")


def test_a_file_with_a_queue_table_but_no_schema_version_is_refused_unchanged(tmp_path):
    odd = tmp_path / "odd.sqlite"
    with sqlite3.connect(odd) as conn:
        conn.execute("CREATE TABLE queue_info (x)")
    conn.close()
    before = odd.read_bytes()
    with pytest.raises(DataError, match=r"not a deepmars label queue \(no schema version\)"):
        LabelStore.open(odd, QUEUE_CLASSES)
    assert odd.read_bytes() == before
    with sqlite3.connect(odd) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    conn.close()


_LABELER = """
import sys
from deepmars.catalog.labels import LabelStore
s = LabelStore.open(sys.argv[1])
while True:
    it = s.next_item("alice")
    if it is None:
        break
    event = s.label(it.item_id, "alice", it.item_id % 3)
    print(event, it.item_id, flush=True)
"""


def test_killing_the_labeler_loses_no_acknowledged_label(tmp_path):
    s = LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 1)
    s.add_items([item(i) for i in range(5000)])
    s.close()
    proc = subprocess.Popen([sys.executable, "-c", _LABELER, str(tmp_path / "q.sqlite")], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    acknowledged = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        acknowledged.append(tuple(int(x) for x in proc.stdout.readline().split()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) == 50
    conn = sqlite3.connect(tmp_path / "q.sqlite")
    stored = set(conn.execute("SELECT event_id, item_id FROM events"))
    assert set(acknowledged) <= stored
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with LabelStore.open(tmp_path / "q.sqlite") as s:  # reopens and goes on
        assert s.progress().labeled == len(stored)


def test_a_released_image_goes_to_the_next_user(tmp_path):
    with store(tmp_path, n=1) as s:
        first = s.next_item("alice")
        assert s.next_item("bob") is None
        s.release("alice")  # she closed the page
        assert s.next_item("bob").item_id == first.item_id
