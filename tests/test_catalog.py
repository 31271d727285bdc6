"""The catalog package: every table typed and merged, a foreign file left untouched, a lock reported."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from support import A, B, options

from deepmars.catalog import TABLES, Catalog, CatalogLocked, sqlite_file
from deepmars.catalog.merge import MERGES
from deepmars.catalog.schema import DERIVED_TABLES
from deepmars.errors import DataError
from deepmars.models.bundle import ModelBundle
from deepmars.prediction import cli
from deepmars.prediction.runner import run_predict


def _key_constraints(cat: Catalog, name: str) -> set[tuple[str, ...]]:
    """The table's PRIMARY KEY and UNIQUE constraints, as column tuples."""
    pk = tuple(r[1] for r in sorted(cat.conn.execute(f"PRAGMA table_info({name})"), key=lambda r: r[5]) if r[5])
    unique = {tuple(c[2] for c in cat.conn.execute(f"PRAGMA index_info('{index[1]}')"))
              for index in cat.conn.execute(f"PRAGMA index_list({name})") if index[2] and index[3] in ("pk", "u")}
    return {pk} | unique


def test_every_table_has_its_row_type_key_and_merge(tmp_path):
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        tables = {r[0] for r in cat.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        fts_shadow = {t for t in tables for fts in ("prediction_text", "scene_text") if t.startswith(fts + "_")}
        assert tables - fts_shadow == set(TABLES) | set(DERIVED_TABLES) == set(MERGES)
        for name, spec in TABLES.items():
            assert tuple(cat.columns(name)) == spec.columns, name
            assert spec.key in _key_constraints(cat, name), name


def _landmark_catalog(write_scene, classify, tmp_path, name, *scenes):
    folder = tmp_path / f"{name}-images"
    for scene in scenes:
        write_scene(folder, scene)
    catalog = tmp_path / f"{name}.sqlite"
    classify(folder, catalog)
    return catalog


@pytest.mark.slow
def test_merge_carries_every_table_landmarks_included(tmp_path, write_scene, classify, predict_config, table_rows, sql):
    folder = tmp_path / "images"
    scenes = [write_scene(folder, A), write_scene(folder, B)]
    single, first, second = (tmp_path / f"{n}.sqlite" for n in ("single", "first", "second"))
    classify(folder, single)
    classify(scenes[0], first)  # two shards of the same images
    classify(scenes[1], second)
    merged = tmp_path / "merged.sqlite"
    assert cli.main(predict_config("command=merge", f"input=[{first},{second}]", f"catalog={merged}")) == 0
    overlay = TABLES["landmark_images"].columns.index("overlay")  # table_rows drops classified_at, the last
    for table in ("landmark_images", "landmarks", "landmark_counts", "models"):
        expected, got = table_rows(single, table), table_rows(merged, table)
        if table == "landmark_images":  # each shard's overlays sit beside its own catalog
            assert [r[overlay].split("/")[0] for r in got] == ["first_overlays", "second_overlays"]
            expected, got = ([r[:overlay] + r[overlay + 1:] for r in rows] for rows in (expected, got))
        assert got == expected and got, table
    assert sql(merged, "SELECT count(*) FROM runs") == [(2,)]


@pytest.mark.slow
def test_merge_keeps_the_newer_of_two_images_with_the_same_name_and_all_its_rows(tmp_path, write_scene, classify,
                                                                                 predict_config, sql, table_rows):
    older = _landmark_catalog(write_scene, classify, tmp_path, "older", A, B)
    newer_folder = tmp_path / "newer-images"
    write_scene(newer_folder, A, discs=[(100, 100, 20, 200)])  # A redone later with one disc
    newer = tmp_path / "newer.sqlite"
    classify(newer_folder, newer)
    merged = tmp_path / "merged.sqlite"
    assert cli.main(predict_config("command=merge", f"input=[{newer},{older}]", f"catalog={merged}")) == 0
    assert sql(merged, "SELECT source_image, landmarks FROM landmark_images ORDER BY 1") == [(A, 1), (B, 3)]
    assert sql(merged, "SELECT source_image, count(*) FROM landmarks GROUP BY 1 ORDER BY 1") == [(A, 1), (B, 3)]
    assert sql(merged, "SELECT count(DISTINCT sha256) FROM landmark_counts") == [(2,)]
    # Merging the same inputs again changes nothing.
    before = {t: table_rows(merged, t) for t in TABLES}
    assert cli.main(predict_config("command=merge", f"input=[{older},{newer}]", f"catalog={merged}")) == 0
    assert {t: table_rows(merged, t) for t in TABLES} == before


def test_merge_refuses_a_table_it_does_not_know_before_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLES, "labels", TABLES["errors"])
    from deepmars.catalog.merge import merge_catalogs

    with pytest.raises(DataError, match=r"does not know how to merge catalog tables \['labels'\]"):
        merge_catalogs([], tmp_path / "out.sqlite")
    assert not (tmp_path / "out.sqlite").exists()


def test_a_foreign_sqlite_file_is_refused_and_left_exactly_as_it_was(tmp_path):
    foreign = tmp_path / "other_program.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.close()
    before = hashlib.sha256(foreign.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="not a deepmars catalog"):
        Catalog.open(foreign)
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_program.sqlite"]  # no -wal / -shm beside it
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.slow
def test_a_catalog_locked_by_another_process_is_a_message_and_exit_4(tmp_path, monkeypatch, capsys, tiny_bundle,
                                                                     write_images, predict_config):
    images, model = tmp_path / "in", tiny_bundle(tmp_path / "m.pt")
    write_images(images, 3)
    catalog = tmp_path / "c.sqlite"
    run_predict(options(images, model, catalog), ModelBundle.load(model), progress=False)
    monkeypatch.setattr(sqlite_file, "LOCK_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        code = cli.main(predict_config(f"input={images}", f"model={model}", f"catalog={catalog}", "force=true"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == 4
    assert "locked by another process" in err and str(catalog) in err and "Traceback" not in err
    with pytest.raises(CatalogLocked):
        with sqlite3.connect(catalog, isolation_level=None) as other:
            other.execute("BEGIN IMMEDIATE")
            with Catalog.open(catalog) as cat:
                cat.start_run("m", "in", None, {})
