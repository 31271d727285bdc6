"""Incremental runs: only new or changed content is inferred; renames reuse; models get own rows."""

from __future__ import annotations

import io
import os
import shutil

import pytest
from support import options

from deepmars.catalog import Catalog
from deepmars.models.loading import load_bundle
from deepmars.prediction.runner import RunSummary, run_predict


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_bundle):
    root = tmp_path_factory.mktemp("models")
    return tiny_bundle(root / "a.pt", seed=0), tiny_bundle(root / "b.pt", seed=1)


def predict(folder, model, catalog, **kw) -> RunSummary:
    return run_predict(options(folder, model, catalog, **kw), load_bundle(str(model)), out=io.StringIO(),
                       progress=False)


def counts(s: RunSummary) -> tuple[int, int, int, int]:
    return s.classified, s.reused, s.skipped, s.failed


def test_rerun_classifies_only_new_and_changed_files(tmp_path, models, write_images, table_rows):
    folder, catalog = tmp_path / "in", tmp_path / "c.sqlite"
    paths = write_images(folder, 12)
    assert counts(predict(folder, models[0], catalog)) == (12, 0, 0, 0)
    before = table_rows(catalog, "predictions")
    with Catalog.open(catalog) as cat:
        stamps = cat.conn.execute("SELECT path, classified_at FROM predictions ORDER BY path").fetchall()

    assert counts(predict(folder, models[0], catalog)) == (0, 0, 12, 0)
    with Catalog.open(catalog) as cat:  # untouched rows are not rewritten (same timestamps)
        assert cat.conn.execute("SELECT path, classified_at FROM predictions ORDER BY path").fetchall() == stamps

    write_images(folder, 3, start=100)  # the folder grew
    shutil.copyfile(write_images(tmp_path / "other", 1, start=200)[0], paths[0])  # new content, same name
    assert counts(predict(folder, models[0], catalog)) == (4, 0, 11, 0)
    after = table_rows(catalog, "predictions")
    assert len(after) == 15
    changed = [r for r in after if r[1] == str(paths[0])][0]
    assert changed not in before and changed[2] != [r for r in before if r[1] == str(paths[0])][0][2]


def test_same_content_under_a_new_path_or_mtime_is_not_inferred_again(tmp_path, models, write_images, table_rows):
    folder, catalog = tmp_path / "in", tmp_path / "c.sqlite"
    paths = write_images(folder, 6, nested=False)
    predict(folder, models[0], catalog)
    original = {r[1]: r for r in table_rows(catalog, "predictions")}

    renamed = folder / "renamed" / "0123MR0000000001E01_DRCL.JPG"
    renamed.parent.mkdir()
    os.rename(paths[1], renamed)
    os.utime(paths[2], ns=(1, 1))  # touched: stat differs, content does not
    assert counts(predict(folder, models[0], catalog)) == (0, 2, 4, 0)
    rows = {r[1]: r for r in table_rows(catalog, "predictions")}
    new, old = rows[str(renamed)], original[str(paths[1])]
    assert new[2] == old[2] and new[11:15] == old[11:15]  # same hash, class, confidence, top-k, flag
    assert (new[7], new[8]) == (123, "MR")  # name metadata comes from the new name
    assert str(paths[1]) in rows  # the old path's row stays: the catalog is not pruned


def test_another_model_adds_its_own_rows_and_force_reclassifies(tmp_path, models, write_images, table_rows):
    folder, catalog = tmp_path / "in", tmp_path / "c.sqlite"
    write_images(folder, 5)
    predict(folder, models[0], catalog)
    assert counts(predict(folder, models[1], catalog)) == (5, 0, 0, 0)
    with Catalog.open(catalog) as cat:
        per_model = dict(cat.conn.execute("SELECT model_id, count(*) FROM predictions GROUP BY model_id"))
        assert len(per_model) == 2 and set(per_model.values()) == {5}
        assert len(cat.models()) == 2
    rows = table_rows(catalog, "predictions")
    assert counts(predict(folder, models[0], catalog, force=True)) == (5, 0, 0, 0)
    assert table_rows(catalog, "predictions") == rows  # same content, same model: same rows


def test_fixed_bad_file_moves_from_errors_to_predictions(tmp_path, models, write_images, table_rows):
    folder, catalog = tmp_path / "in", tmp_path / "c.sqlite"
    write_images(folder, 2, nested=False)
    broken = folder / "0300ML0000000999E01_DRCL.JPG"
    broken.write_bytes(b"")
    assert counts(predict(folder, models[0], catalog)) == (2, 0, 0, 1)
    assert counts(predict(folder, models[0], catalog)) == (0, 0, 2, 1)  # still bad: retried, still failing
    shutil.copyfile(write_images(tmp_path / "fix", 1, start=999, nested=False)[0], broken)
    summary = predict(folder, models[0], catalog)
    assert counts(summary) == (1, 0, 2, 0) and summary.exit_code == 0
    assert table_rows(catalog, "errors") == []


@pytest.mark.slow
def test_worker_processes_write_the_same_catalog_as_in_process_decoding(tmp_path, models, write_images, table_rows):
    folder = tmp_path / "in"
    write_images(folder, 20)
    predict(folder, models[0], tmp_path / "inline.sqlite", num_workers=0)
    predict(folder, models[0], tmp_path / "workers.sqlite", num_workers=2, batch_size=3)
    assert table_rows(tmp_path / "inline.sqlite", "predictions") == table_rows(tmp_path / "workers.sqlite",
                                                                              "predictions")
