"""Catalog file: versioned schema, WAL, one row per (model, path), all-or-nothing batches."""

from __future__ import annotations

import sqlite3

import pytest
from support import error_row as error
from support import prediction_row as prediction

from deepmars.catalog import SCHEMA_VERSION, Catalog
from deepmars.catalog.predictions import PredictionStore
from deepmars.errors import DataError


def test_new_catalog_is_versioned_and_in_wal_mode(tmp_path):
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        assert cat.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {"models", "predictions", "errors", "runs"} <= {
            r[0] for r in cat.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with Catalog.open(tmp_path / "c.sqlite", create=False):  # reopening an existing catalog is fine
        pass


def test_refuses_newer_schema_foreign_sqlite_and_missing_file(tmp_path):
    newer = tmp_path / "newer.sqlite"
    Catalog.open(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(DataError, match="newer deepmars"):
        Catalog.open(newer)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(DataError, match="not a deepmars catalog"):
        Catalog.open(foreign)
    (tmp_path / "text.sqlite").write_text("hello" * 200)
    with pytest.raises(DataError, match="not a usable SQLite catalog"):
        Catalog.open(tmp_path / "text.sqlite")
    with pytest.raises(DataError, match="no such catalog"):
        Catalog.open(tmp_path / "absent.sqlite", create=False)


def test_a_path_is_a_prediction_or_an_error_never_both(tmp_path, write_batch):
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        write_batch(cat, [prediction("/a"), prediction("/b")], [error("/c")])
        write_batch(cat, [prediction("/a", conf=0.5)], [error("/b")])  # /a replaced, /b now broken
        write_batch(cat, [prediction("/c")], [])  # /c fixed
        write_batch(cat, [prediction("/a", model="runs:/other")], [])  # another model: its own row
        rows = cat.conn.execute("SELECT model_id, path, confidence FROM predictions ORDER BY 1, 2").fetchall()
        errors = cat.conn.execute("SELECT path FROM errors").fetchall()
    assert rows == [("runs:/a", "/a", 0.5), ("runs:/a", "/c", 0.9), ("runs:/other", "/a", 0.9)]
    assert errors == [("/b",)]


def test_a_failing_batch_leaves_nothing_behind(tmp_path, write_batch):
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        write_batch(cat, [prediction("/a")], [])
        broken = prediction("/c")._replace(classified_at=None)  # classified_at NOT NULL: fails mid-batch
        with pytest.raises(sqlite3.IntegrityError):
            write_batch(cat, [prediction("/b"), broken], [error("/a")])
        assert cat.conn.execute("SELECT path FROM predictions").fetchall() == [("/a",)]
        assert cat.conn.execute("SELECT count(*) FROM errors").fetchone()[0] == 0
        write_batch(cat, [prediction("/b")], [])  # the connection is usable afterwards
        assert len(cat.rows("predictions")) == 2


def test_unchanged_paths_compare_size_and_mtime(tmp_path, write_batch):
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        write_batch(cat, [prediction(f"/{i}") for i in range(2000)], [])
        stats = [(f"/{i}", 10, 1) for i in range(0, 2000, 2)] + [("/1", 11, 1), ("/3", 10, 2), ("/new", 10, 1)]
        a, b = PredictionStore(cat, "runs:/a"), PredictionStore(cat, "runs:/b")
        assert a.unchanged_paths(stats) == {f"/{i}" for i in range(0, 2000, 2)}
        assert b.unchanged_paths(stats) == set()
        assert a.known("sha-/7").predicted_class == "wheel"
        assert b.known("sha-/7") is None
