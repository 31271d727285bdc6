"""Sharding: shards partition the work, each writes its own catalog, merge equals a single run."""

from __future__ import annotations

import io

import pytest
from support import bad_files, error_row, options, prediction_row

from deepmars.catalog import Catalog
from deepmars.catalog.merge import merge_catalogs
from deepmars.errors import ConfigError
from deepmars.models.loading import load_bundle
from deepmars.prediction.inputs import Shard
from deepmars.prediction.options import merge_options, predict_options
from deepmars.prediction.runner import run_predict


@pytest.fixture(scope="module")
def runs(tmp_path_factory, write_images, write_files, tiny_bundle):
    root = tmp_path_factory.mktemp("shards")
    folder = root / "in"
    write_images(folder, 30)
    write_files(folder / "bad", {k: v for k, v in bad_files().items() if k in ("zero_byte.jpg", "truncated.jpg")})
    model = tiny_bundle(root / "m.pt")

    def predict(catalog, shard=None):
        return run_predict(options(folder, model, catalog, shard=shard), load_bundle(str(model)),
                           out=io.StringIO(), progress=False)

    single = predict(root / "single.sqlite")
    shards = [predict(root / f"catalog.shard-{i}-of-3.sqlite", Shard(i, 3)) for i in range(3)]
    return root, single, shards


@pytest.mark.slow
def test_shards_split_the_work(runs):
    _, single, shards = runs
    assert sum(s.classified for s in shards) == single.classified == 30
    assert sum(s.failed for s in shards) == single.failed == 2
    assert all(s.classified > 0 for s in shards)  # 30 paths over 3 shards: none empty


def test_merge_of_shards_equals_a_single_run(runs, table_rows):
    root, _, _ = runs
    merge_catalogs([root / f"catalog.shard-{i}-of-3.sqlite" for i in range(3)], root / "merged.sqlite")
    for table in ("predictions", "errors", "models"):
        assert table_rows(root / "merged.sqlite", table) == table_rows(root / "single.sqlite", table)
    with Catalog.open(root / "merged.sqlite", create=False) as cat:
        assert cat.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 3  # each shard's run is logged
    merge_catalogs([root / f"catalog.shard-{i}-of-3.sqlite" for i in range(3)], root / "merged.sqlite")
    assert table_rows(root / "merged.sqlite", "predictions") == table_rows(root / "single.sqlite", "predictions")


def test_merge_keeps_the_later_state_of_a_path(tmp_path, write_batch):
    with Catalog.open(tmp_path / "old.sqlite") as old:
        write_batch(old, [prediction_row("/a"), prediction_row("/b")], [])
    with Catalog.open(tmp_path / "new.sqlite") as new:  # later: /a broke, /b was reclassified
        write_batch(new, [prediction_row("/b", conf=0.4, at="t9")], [error_row("/a", at="t9")])
    merge_catalogs([tmp_path / "new.sqlite", tmp_path / "old.sqlite"], tmp_path / "m.sqlite")
    with Catalog.open(tmp_path / "m.sqlite") as cat:
        assert cat.conn.execute("SELECT path, confidence FROM predictions").fetchall() == [("/b", 0.4)]
        assert cat.conn.execute("SELECT path FROM errors").fetchall() == [("/a",)]


@pytest.mark.slow
def test_shard_option_names_its_own_catalog_and_merge_takes_a_glob(tmp_path, predict_config):
    opts = predict_options(predict_config("input=x", "model=m.pt", "shard=2/4", "catalog=out/cat.sqlite"))
    assert (opts.shard, str(opts.catalog)) == (Shard(2, 4), "out/cat.shard-2-of-4.sqlite")
    for i in range(2):
        Catalog.open(tmp_path / f"cat.shard-{i}-of-2.sqlite").close()
    merge = merge_options(predict_config("command=merge", f"input={tmp_path}/cat.shard-*-of-2.sqlite",
                                         f"catalog={tmp_path}/all.sqlite"))
    assert [p.name for p in merge.inputs] == ["cat.shard-0-of-2.sqlite", "cat.shard-1-of-2.sqlite"]
    with pytest.raises(ConfigError, match="also one of the inputs"):
        merge_options(predict_config("command=merge", f"input={tmp_path}/cat.shard-*-of-2.sqlite",
                                     f"catalog={tmp_path}/cat.shard-0-of-2.sqlite"))
    with pytest.raises(ConfigError, match="no catalog file matches"):
        merge_options(predict_config("command=merge", f"input={tmp_path}/none-*.sqlite"))
