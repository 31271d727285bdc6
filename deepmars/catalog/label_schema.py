"""A label queue's tables: one SQLite file per labeling job, beside the catalog it draws from.

- ``queue_info``: one row: the class list the queue labels with (fixed for the queue's life, so
  an export never mixes two class lists), how many people label each image, when it was made;
- ``items``: the images to label, with the posteriors of the model that ranks them (active
  learning) and a random key (the paper's random order); ``unlabelable`` says why an image that
  cannot be decoded is skipped;
- ``leases``: who is looking at which image until when, so two people are never shown the same
  image unless the queue asks for more than one label per image;
- ``events``: every label, "Later" and review decision with its user and time. Nothing is ever
  overwritten: an undo stamps ``undone_at`` on the event, and a user's current answer for an image
  is their latest event that is not undone. ``n_labels`` / ``n_later`` / ``resolved`` on ``items``
  are derived from the events in the same transaction as each event, so choosing the next image
  needs no scan of the history.

``LABEL_TABLES`` names every table with its row type and key (the tests check them against the
database, as ``TABLES`` for the catalog).
"""

from __future__ import annotations

from typing import NamedTuple

from deepmars.catalog.rows import columns
from deepmars.catalog.schema import Table
from deepmars.catalog.sqlite_file import SchemaSpec

LABEL_SCHEMA_VERSION = 1
ACTIONS = ("label", "later", "review")

LABEL_SCHEMA = """
CREATE TABLE queue_info (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    classes         TEXT NOT NULL,      -- JSON [[class id, name], ...]: the buttons, in order
    class_source    TEXT NOT NULL,      -- the data set YAML or class file the list came from
    labels_per_item INTEGER NOT NULL,   -- 1, or 2+ for double labeling
    created_at      TEXT NOT NULL
);
CREATE TABLE items (
    item_id     INTEGER PRIMARY KEY,    -- what the client sends: a path never comes from it
    path        TEXT NOT NULL UNIQUE,   -- absolute path of the image file
    name        TEXT NOT NULL,          -- the image as a labels file names it, relative to image_root
    image_root  TEXT NOT NULL,
    random_key  REAL NOT NULL,          -- random order: seeded, fixed per path
    model_id    TEXT,                   -- the model whose posteriors follow (NULL: none)
    suggestion  TEXT,                   -- its top class
    confidence  REAL,                   -- top-1 probability
    margin      REAL,                   -- top-1 minus top-2 probability
    entropy     REAL,                   -- of the posterior, nats
    top_k       TEXT,                   -- JSON [{"class": name, "p": probability}, ...]
    unlabelable TEXT,                   -- why it cannot be labeled (e.g. cannot be decoded), else NULL
    n_labels    INTEGER NOT NULL DEFAULT 0,  -- users whose current answer is a label
    n_later     INTEGER NOT NULL DEFAULT 0,  -- users whose current answer is Later
    resolved    INTEGER,                -- class id of a current review decision, else NULL
    added_at    TEXT NOT NULL
);
CREATE INDEX items_by_random ON items (random_key);
CREATE INDEX items_by_confidence ON items (confidence);
CREATE INDEX items_by_margin ON items (margin);
CREATE INDEX items_by_entropy ON items (entropy);
CREATE TABLE leases (
    item_id     INTEGER NOT NULL REFERENCES items (item_id),
    user        TEXT NOT NULL,
    leased_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,          -- UTC ISO 8601: compared as text
    PRIMARY KEY (item_id, user)
) WITHOUT ROWID;
CREATE INDEX leases_by_user ON leases (user);
CREATE TABLE events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id     INTEGER NOT NULL REFERENCES items (item_id),
    user        TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('label', 'later', 'review')),
    class_id    INTEGER,                -- label and review: the data set's class id
    class_name  TEXT,
    source      TEXT NOT NULL,          -- web, labelstudio, simulation, ...
    external_id TEXT UNIQUE,            -- e.g. labelstudio:<annotation id>: a re-import adds nothing
    created_at  TEXT NOT NULL,
    undone_at   TEXT                    -- set by undo, the row stays
);
CREATE INDEX events_by_item ON events (item_id, user, undone_at, event_id);
CREATE INDEX events_by_user ON events (user, undone_at, event_id)
"""


class QueueInfoRow(NamedTuple):
    id: int
    classes: str
    class_source: str
    labels_per_item: int
    created_at: str


class ItemRow(NamedTuple):
    item_id: int
    path: str
    name: str
    image_root: str
    random_key: float
    model_id: str | None
    suggestion: str | None
    confidence: float | None
    margin: float | None
    entropy: float | None
    top_k: str | None
    unlabelable: str | None
    n_labels: int
    n_later: int
    resolved: int | None
    added_at: str


class LeaseRow(NamedTuple):
    item_id: int
    user: str
    leased_at: str
    expires_at: str


class EventRow(NamedTuple):
    event_id: int
    item_id: int
    user: str
    action: str
    class_id: int | None
    class_name: str | None
    source: str
    external_id: str | None
    created_at: str
    undone_at: str | None


LABEL_TABLES = {t.name: t for t in (
    Table("queue_info", QueueInfoRow, ("id",)),
    Table("items", ItemRow, ("item_id",), "added_at"),
    Table("leases", LeaseRow, ("item_id", "user"), "leased_at"),
    Table("events", EventRow, ("event_id",), "created_at"),
)}

_QUEUE_HINT = "queue= takes a label queue file of its own (created on first use), not a catalog"
LABEL_QUEUE = SchemaSpec(
    kind="label queue", version=LABEL_SCHEMA_VERSION, schema=LABEL_SCHEMA, migrations={},
    marker_table="queue_info", refuse_hint=_QUEUE_HINT, missing_hint=_QUEUE_HINT, foreign_keys=True)

ITEM_COLUMNS = columns(ItemRow)
EVENT_COLUMNS = columns(EventRow)
