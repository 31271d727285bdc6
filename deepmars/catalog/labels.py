"""The label store: images to label, leases, every label with its user and time, and what they add up to.

Rules (each write is one ``BEGIN IMMEDIATE .. COMMIT`` transaction in WAL mode, so a server
killed mid-labeling keeps every label it acknowledged):

- **Next image**: a user who holds an unexpired lease gets that image again (a reload shows the
  same image); otherwise the first image in the queue's order that still needs labels, that this
  user has not labeled, and that is not leased to others beyond the labels it still needs. Images
  someone put off with Later come after all the others, so they are shown again only at the end.
- **Leases** expire after ``lease_s``: an image a user walked away from goes back to the queue.
- **History**: a label, Later or review is a new ``events`` row; undo stamps ``undone_at`` on the
  user's latest event and leases that image back to them. A user's answer for an image is their
  latest event not undone.
- **Decided label** of an image: a review decision if there is one, else the class all current
  labels agree on once ``labels_per_item`` users labeled it; differing labels are a disagreement,
  listed for review and never exported.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from deepmars.catalog.label_schema import ITEM_COLUMNS, LABEL_QUEUE, EventRow, ItemRow
from deepmars.catalog.sqlite_file import close_versioned, immediate_transaction, open_versioned
from deepmars.errors import ConfigError, DataError

# Queue orders: the paper's random order, and active learning's most uncertain first. Items
# without posteriors come after those with (NULLs last), in random order among themselves.
ORDERS = {
    "random": "random_key",
    "least_confident": "confidence IS NULL, confidence, random_key",
    "margin": "margin IS NULL, margin, random_key",
    "entropy": "entropy IS NULL, entropy DESC, random_key",
}
DEFAULT_LEASE_S = 600.0


def iso(t: datetime) -> str:
    """The catalog's time format (UTC, microseconds, Z), sortable as text."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClassList:
    """The classes a queue labels with: (data set class id, name) pairs, in button order."""

    entries: tuple[tuple[int, str], ...]
    source: str = ""

    def __post_init__(self) -> None:
        ids = [i for i, _ in self.entries]
        names = [n for _, n in self.entries]
        if not self.entries:
            raise DataError("the class list is empty", self.source or None)
        if len(set(ids)) != len(ids) or len(set(names)) != len(names):
            raise DataError(f"the class list repeats an id or a name: {list(self.entries)}", self.source or None)

    @property
    def ids(self) -> list[int]:
        return [i for i, _ in self.entries]

    @property
    def names(self) -> list[str]:
        return [n for _, n in self.entries]

    def name_of(self, class_id: int) -> str:
        for i, n in self.entries:
            if i == class_id:
                return n
        raise ConfigError(f"class id {class_id} is not in this queue's class list {self.describe()}")

    def id_of(self, name: str) -> int:
        for i, n in self.entries:
            if n == name:
                return i
        raise ConfigError(f"class {name!r} is not in this queue's class list {self.describe()}")

    def describe(self) -> str:
        return "[" + ", ".join(f"{i} {n}" for i, n in self.entries) + "]"

    def to_json(self) -> str:
        return json.dumps([[i, n] for i, n in self.entries])

    @classmethod
    def from_json(cls, text: str, source: str = "") -> ClassList:
        return cls(tuple((int(i), str(n)) for i, n in json.loads(text)), source)


class NewItem(NamedTuple):
    """An image to add to the queue, with the posteriors that rank it (all None without a model)."""

    path: str
    name: str
    image_root: str
    random_key: float
    model_id: str | None = None
    suggestion: str | None = None
    confidence: float | None = None
    margin: float | None = None
    entropy: float | None = None
    top_k: str | None = None
    unlabelable: str | None = None


@dataclass(frozen=True)
class Progress:
    total: int
    labeled: int  # decided, or with all the labels the queue asks for
    skipped: int  # put off with Later by someone, not yet labeled
    left: int  # still to label (skipped not included)
    unlabelable: int
    disagreements: int
    by_user: dict[str, int]  # current labels per user


@dataclass(frozen=True)
class Disagreement:
    item_id: int
    path: str
    labels: dict[str, str]  # user -> class name


class Decided(NamedTuple):
    """An image's decided label, what exports write."""

    item_id: int
    path: str
    name: str
    image_root: str
    class_id: int
    class_name: str
    users: str  # who labeled it, comma-separated


class LabelStore:
    """One open label queue file, used by one thread (a web server opens one per request: SQLite's
    write lock, not a Python lock, keeps concurrent writers of one or many processes apart)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Callable[[], datetime] = system_clock,
                 lease_s: float = DEFAULT_LEASE_S):
        self.conn = conn
        self.path = path
        self.clock = clock
        self.lease_s = float(lease_s)
        self.classes, self.labels_per_item = self._info()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, classes: ClassList | None = None, labels_per_item: int | None = None,
             create: bool = True, **kwargs) -> LabelStore:
        """Open a queue; a new one needs ``classes``. A class list that differs from the queue's is refused."""
        path = Path(path)
        # A web request's dependency may open and close the store on other threads than the route's.
        conn = open_versioned(path, LABEL_QUEUE, create=create, check_same_thread=False)
        try:
            _init_or_check(conn, path, classes, labels_per_item)
            return cls(conn, path, **kwargs)
        except BaseException:
            conn.close()
            raise

    def close(self, checkpoint: bool = True) -> None:
        """Close; ``checkpoint`` folds the WAL into the main file (a command's last act, not a web
        request's: TRUNCATE waits for other readers, and SQLite checkpoints on its own as it goes)."""
        close_versioned(self.conn, checkpoint)

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _info(self) -> tuple[ClassList, int]:
        classes, source, per_item = self.conn.execute(
            "SELECT classes, class_source, labels_per_item FROM queue_info").fetchone()
        return ClassList.from_json(classes, source), int(per_item)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate_transaction(self.conn, self.path) as conn:
            yield conn

    def _now(self) -> str:
        return iso(self.clock())

    # -------------------------------------------------------------------- items
    def add_items(self, items: Sequence[NewItem]) -> tuple[int, int]:
        """Add new images; for known paths refresh the posteriors (a newer model re-ranks the queue).

        Returns (added, updated). Labels already given are never touched.
        """
        now = self._now()
        with self.transaction() as conn:
            before = conn.execute("SELECT count(*) FROM items").fetchone()[0]
            conn.executemany(
                "INSERT INTO items (path, name, image_root, random_key, model_id, suggestion, confidence, margin, "
                "entropy, top_k, unlabelable, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET model_id = excluded.model_id, suggestion = excluded.suggestion, "
                "confidence = excluded.confidence, margin = excluded.margin, entropy = excluded.entropy, "
                "top_k = excluded.top_k WHERE excluded.model_id IS NOT NULL",
                [(*item, now) for item in items])
            after = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        return after - before, len(items) - (after - before)

    def item(self, item_id: int) -> ItemRow | None:
        row = self.conn.execute(f"SELECT {', '.join(ITEM_COLUMNS)} FROM items WHERE item_id = ?",
                                (int(item_id),)).fetchone()
        return None if row is None else ItemRow(*row)

    def items(self) -> list[ItemRow]:
        return [ItemRow(*r) for r in self.conn.execute(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM items ORDER BY item_id")]

    def mark_unlabelable(self, item_id: int, reason: str) -> None:
        """An image that cannot be shown (not decodable): skipped by everyone, with the reason kept."""
        with self.transaction() as conn:
            conn.execute("UPDATE items SET unlabelable = ? WHERE item_id = ?", (reason, int(item_id)))
            conn.execute("DELETE FROM leases WHERE item_id = ?", (int(item_id),))

    # ------------------------------------------------------------- next / lease
    def next_item(self, user: str, order: str = "random") -> ItemRow | None:
        """Lease the next image to ``user`` (see the module doc); None when nothing is left for them."""
        order_sql = _order_sql(order)
        now = self.clock()
        with self.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE expires_at <= ?", (iso(now),))
            held = conn.execute(
                "SELECT l.item_id FROM leases l JOIN items i USING (item_id) WHERE l.user = ? "
                "AND i.unlabelable IS NULL ORDER BY l.leased_at DESC LIMIT 1", (user,)).fetchone()
            item_id = held[0] if held else self._first_open(conn, user, order_sql, iso(now))
            if item_id is None:
                return None
            conn.execute("DELETE FROM leases WHERE user = ? AND item_id != ?", (user, item_id))
            conn.execute("INSERT INTO leases VALUES (?, ?, ?, ?) ON CONFLICT (item_id, user) DO UPDATE SET "
                         "expires_at = excluded.expires_at",
                         (item_id, user, iso(now), iso(now + timedelta(seconds=self.lease_s))))
        return self.item(item_id)

    def _first_open(self, conn: sqlite3.Connection, user: str, order_sql: str, now: str) -> int | None:
        row = conn.execute(
            "SELECT i.item_id FROM items i WHERE i.unlabelable IS NULL AND i.resolved IS NULL "
            "AND i.n_labels + (SELECT count(*) FROM leases l WHERE l.item_id = i.item_id AND l.user != ?) < ? "
            f"AND NOT EXISTS ({_CURRENT_OF_USER} AND e.action = 'label') "
            f"ORDER BY i.n_later > 0, {order_sql}, i.item_id LIMIT 1",
            (user, self.labels_per_item, user)).fetchone()
        return None if row is None else row[0]

    def release(self, user: str) -> None:
        """Give back the user's lease (they close the page)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE user = ?", (user,))

    # ------------------------------------------------------------------ answers
    def label(self, item_id: int, user: str, class_id: int, source: str = "web",
              external_id: str | None = None, created_at: str | None = None) -> int:
        """Store ``user``'s label for an image; returns the event id."""
        return self._event(item_id, user, "label", class_id, source, external_id, created_at)

    def later(self, item_id: int, user: str, source: str = "web") -> int:
        """``user`` is unsure: the image goes to the end of the queue for everyone."""
        return self._event(item_id, user, "later", None, source)

    def review(self, item_id: int, user: str, class_id: int, source: str = "web") -> int:
        """A reviewer's decision on a disagreement: it wins over the labels."""
        return self._event(item_id, user, "review", class_id, source)

    def _event(self, item_id: int, user: str, action: str, class_id: int | None, source: str,
               external_id: str | None = None, created_at: str | None = None) -> int:
        with self.transaction() as conn:
            return self._insert_event(conn, item_id, user, action, class_id, source, external_id, created_at)

    def import_events(self, events: Sequence[tuple]) -> list[bool]:
        """Many (item_id, user, action, class_id, source, external_id, created_at) in one transaction;
        for each, whether it was new (an event with the same external id is not added again)."""
        with self.transaction() as conn:
            return [self._insert_event(conn, *event) > 0 for event in events]

    def _insert_event(self, conn: sqlite3.Connection, item_id: int, user: str, action: str, class_id: int | None,
                      source: str, external_id: str | None = None, created_at: str | None = None) -> int:
        """One event with its derived counts (inside the caller's transaction); 0 if already imported."""
        name = None if class_id is None else self.classes.name_of(int(class_id))
        if conn.execute("SELECT 1 FROM items WHERE item_id = ?", (int(item_id),)).fetchone() is None:
            raise DataError(f"no item {item_id} in this queue", self.path)
        if external_id is not None and conn.execute(
                "SELECT 1 FROM events WHERE external_id = ?", (external_id,)).fetchone():
            return 0
        cur = conn.execute(
            "INSERT INTO events (item_id, user, action, class_id, class_name, source, external_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (int(item_id), user, action, None if class_id is None else int(class_id), name, source,
             external_id, created_at or self._now()))
        conn.execute("DELETE FROM leases WHERE item_id = ? AND user = ?", (int(item_id), user))
        _refresh_item(conn, int(item_id))
        return int(cur.lastrowid)

    def undo(self, user: str) -> ItemRow | None:
        """Take back ``user``'s latest answer; the image is leased back to them. None if nothing to undo."""
        now = self.clock()
        with self.transaction() as conn:
            row = conn.execute("SELECT event_id, item_id FROM events WHERE user = ? AND undone_at IS NULL "
                               "ORDER BY event_id DESC LIMIT 1", (user,)).fetchone()
            if row is None:
                return None
            event_id, item_id = row
            conn.execute("UPDATE events SET undone_at = ? WHERE event_id = ?", (iso(now), event_id))
            _refresh_item(conn, item_id)
            conn.execute("DELETE FROM leases WHERE user = ?", (user,))
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                         (item_id, user, iso(now), iso(now + timedelta(seconds=self.lease_s))))
        return self.item(item_id)

    # -------------------------------------------------------------------- reads
    def history(self, item_id: int | None = None) -> list[EventRow]:
        where, params = ("WHERE item_id = ?", (int(item_id),)) if item_id is not None else ("", ())
        return [EventRow(*r) for r in self.conn.execute(f"SELECT * FROM events {where} ORDER BY event_id", params)]

    def current_answers(self, item_id: int) -> dict[str, EventRow]:
        """Each user's current answer for an image (latest event not undone)."""
        rows = self.conn.execute(f"{_CURRENT_EVENTS} AND e.item_id = ? ORDER BY e.user", (int(item_id),))
        return {r[2]: EventRow(*r) for r in rows}

    def progress(self) -> Progress:
        k = self.labels_per_item
        total, labeled, skipped, unlabelable = self.conn.execute(
            "SELECT count(*), "
            "coalesce(sum(unlabelable IS NULL AND (resolved IS NOT NULL OR n_labels >= ?)), 0), "
            "coalesce(sum(unlabelable IS NULL AND resolved IS NULL AND n_labels < ? AND n_later > 0), 0), "
            "coalesce(sum(unlabelable IS NOT NULL), 0) FROM items", (k, k)).fetchone()
        by_user = dict(self.conn.execute(
            f"SELECT e.user, count(*) FROM ({_CURRENT_EVENTS}) e WHERE e.action = 'label' GROUP BY e.user"))
        return Progress(total, labeled, skipped, total - labeled - skipped - unlabelable, unlabelable,
                        len(self.disagreements()), by_user)

    def disagreements(self) -> list[Disagreement]:
        """Images whose current labels differ and that no review has decided."""
        rows = self.conn.execute(
            f"SELECT e.item_id, i.path, e.user, e.class_name FROM ({_CURRENT_EVENTS}) e JOIN items i USING (item_id) "
            "WHERE e.action = 'label' AND i.resolved IS NULL AND e.item_id IN (SELECT c.item_id FROM "
            f"({_CURRENT_EVENTS}) c WHERE c.action = 'label' GROUP BY c.item_id HAVING count(DISTINCT c.class_id) > 1) "
            "ORDER BY e.item_id, e.user").fetchall()
        out: dict[int, Disagreement] = {}
        for item_id, path, user, name in rows:
            out.setdefault(item_id, Disagreement(item_id, path, {})).labels[user] = name
        return list(out.values())

    def decided(self) -> list[Decided]:
        """Every image with a decided label (see the module doc), by item id."""
        rows = self.conn.execute(
            f"SELECT i.item_id, i.path, i.name, i.image_root, i.resolved, e.class_id, e.user "
            f"FROM items i JOIN ({_CURRENT_EVENTS}) e USING (item_id) "
            "WHERE i.unlabelable IS NULL AND e.action IN ('label', 'review') ORDER BY i.item_id, e.user").fetchall()
        grouped: dict[int, list[tuple]] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(row)
        out = []
        for item_id, group in grouped.items():
            _, path, name, root, resolved = group[0][:5]
            labels = {r[5] for r in group}
            users = ",".join(sorted({r[6] for r in group}))
            if resolved is not None:
                out.append(Decided(item_id, path, name, root, resolved, self.classes.name_of(resolved), users))
            elif len(labels) == 1 and len(group) >= self.labels_per_item:
                cid = labels.pop()
                out.append(Decided(item_id, path, name, root, cid, self.classes.name_of(cid), users))
        return out


# A user's current answer per image: their latest event that is not undone.
_CURRENT_EVENTS = (
    "SELECT e.* FROM events e WHERE e.undone_at IS NULL AND e.event_id = (SELECT max(x.event_id) FROM events x "
    "WHERE x.item_id = e.item_id AND x.user = e.user AND x.undone_at IS NULL)")
_CURRENT_OF_USER = (
    "SELECT 1 FROM events e WHERE e.item_id = i.item_id AND e.user = ? AND e.undone_at IS NULL AND e.event_id = "
    "(SELECT max(x.event_id) FROM events x WHERE x.item_id = e.item_id AND x.user = e.user AND x.undone_at IS NULL)")


def _order_sql(order: str) -> str:
    if order not in ORDERS:
        raise ConfigError(f"order: {order!r} is not one of {list(ORDERS)}")
    return ORDERS[order]


def _refresh_item(conn: sqlite3.Connection, item_id: int) -> None:
    """Recompute an image's derived counts from its events (inside the caller's transaction)."""
    current = conn.execute(f"SELECT e.action, e.class_id FROM ({_CURRENT_EVENTS}) e WHERE e.item_id = ? "
                           "ORDER BY e.event_id", (item_id,)).fetchall()
    reviews = [cid for action, cid in current if action == "review"]
    conn.execute("UPDATE items SET n_labels = ?, n_later = ?, resolved = ? WHERE item_id = ?",
                 (sum(a == "label" for a, _ in current), sum(a == "later" for a, _ in current),
                  reviews[-1] if reviews else None, item_id))


def _init_or_check(conn: sqlite3.Connection, path: Path, classes: ClassList | None,
                   labels_per_item: int | None) -> None:
    """Write the queue's class list on creation; later opens must bring the same list."""
    row = conn.execute("SELECT classes, class_source, labels_per_item FROM queue_info").fetchone()
    if row is None:
        if classes is None:
            raise DataError("a new label queue needs its class list (classes=<data set YAML or class file>)", path)
        per_item = 1 if labels_per_item is None else int(labels_per_item)
        if per_item < 1:
            raise ConfigError(f"labels_per_item: must be >= 1, got {per_item}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT OR IGNORE INTO queue_info VALUES (1, ?, ?, ?, ?)",
                         (classes.to_json(), classes.source, per_item, iso(system_clock())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        row = conn.execute("SELECT classes, class_source, labels_per_item FROM queue_info").fetchone()
    stored = ClassList.from_json(row[0], row[1])
    if classes is not None and classes.entries != stored.entries:
        raise DataError(
            f"the class list changed: this queue labels with {stored.describe()} (from {stored.source}), "
            f"but classes= gives {classes.describe()} (from {classes.source}); labels of two class lists "
            "cannot be mixed: use the queue's class file, or start a new queue= file", path)
    if labels_per_item is not None and int(labels_per_item) != int(row[2]):
        raise ConfigError(f"labels_per_item: this queue was created with {row[2]} label(s) per image, "
                          f"got {labels_per_item}; start a new queue= file to change it")
