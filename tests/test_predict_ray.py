"""``predict.py engine=ray``: the same catalog as predict.py's single process, on a local Ray.

Ray runs with 2 CPUs and no dashboard (``ray.init(num_cpus=2, include_dashboard=False)``), started
once for the module and shut down after it; the images are the predict tests' tiny MSL-named
JPEGs, the bad files every predict run must survive, and a copy of one image under another name
(content this model has already classified, reused by hash).
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest
from support import bad_files, options

from deepmars.catalog.predictions import PredictionStore
from deepmars.errors import ConfigError
from deepmars.inference.runtimes import installed
from deepmars.models.loading import load_bundle
from deepmars.prediction import cli
from deepmars.prediction.options import RayConfig
from deepmars.prediction.ray_engine import PIP_COMMAND, ray_settings, run_predict_ray
from deepmars.prediction.runner import run_predict

TABLES = ("predictions", "errors")


@pytest.fixture(scope="module")
def scene(tmp_path_factory, write_images, write_files, tiny_bundle) -> tuple[Path, Path, Path]:
    """(image folder, model, the single-process catalog of that folder)."""
    root = tmp_path_factory.mktemp("ray")
    folder = root / "images"
    first = write_images(folder, 30)[0]
    write_files(folder, bad_files())
    shutil.copyfile(first, folder / "copy_of_the_first.JPG")
    model = tiny_bundle(root / "model.pt")
    reference = root / "single.sqlite"
    summary = run_predict(options(folder, model, reference), load_bundle(str(model)), progress=False)
    assert (summary.classified, summary.reused, summary.failed) == (30, 1, 6)
    return folder, model, reference


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


# --------------------------------------------------------------------------------- settings
def test_ray_settings_defaults_and_mistakes(predict_config):
    base = ("input=x", "model=m.pt")
    assert ray_settings(predict_config(*base, "engine=ray")) == RayConfig()
    assert ray_settings(predict_config(*base, "ray.gpus_per_worker=0.5", "ray.workers=4")).gpus_per_worker == 0.5
    for override, message in [
        ("ray.workers=0", "ray.workers: got 0, allowed: an integer >= 1"),
        ("ray.gpus_per_worker=many", "ray.gpus_per_worker: got 'many', allowed: auto or a number >= 0"),
        ("ray.decode_cpus=0", "ray.decode_cpus: got 0.0, allowed: a number > 0"),
        ("+ray.adress=auto", "ray.adress: unknown key; allowed keys: address, "),
        ("device=gpu", "device: got 'gpu', allowed: auto, cpu, cuda or cuda:N"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            ray_settings(predict_config(*base, override))


def test_engine_ray_without_ray_installed_is_a_usage_error_with_the_pip_command(monkeypatch, tmp_path, capsys,
                                                                                predict_config):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    code = cli.main(predict_config(f"input={tmp_path}", f"model={tmp_path}/no_model.pt", "engine=ray",
                                   f"catalog={tmp_path}/c.sqlite"))
    assert code == 2
    err = capsys.readouterr().err
    assert "engine=ray needs Ray Data" in err and PIP_COMMAND in err
    assert not (tmp_path / "c.sqlite").exists()


def test_engine_must_be_local_or_ray(predict_config):
    from deepmars.prediction.options import predict_options

    with pytest.raises(ConfigError, match="engine: got 'spark', allowed: one of local, ray"):
        predict_options(predict_config("input=x", "model=m.pt", "engine=spark"))


def test_a_batch_of_joined_blocks_is_cut_before_content_seen_earlier_in_it(tmp_path):
    """Ray joins decoded blocks when the actors lag: the copy of an image in the same batch is reused from
    the row written just before it, as across predict.py's chunks, not classified a second time."""
    import json

    import numpy as np

    from deepmars.catalog import Catalog
    from deepmars.prediction.ray_engine import _chunks_of

    def item(path: str, sha: str, status: str = "decoded") -> str:
        return json.dumps({"path": path, "status": status, "sha256": sha, "size": 1, "mtime_ns": 1})

    batch = {"item": np.array([item("a", "A"), item("bad", None, "failed"), item("b", "B"), item("a2", "A"),
                               item("c", "C")], dtype=object),
             "probs": np.arange(10, dtype=np.float32).reshape(5, 2)}
    with Catalog.open(tmp_path / "c.sqlite") as catalog:
        store = PredictionStore(catalog, "m")
        parts = [([i.path for i in chunk.items], chunk.decoded_index, probs.tolist())
                 for chunk, probs in _chunks_of(batch, store, force=False)]
        forced = [[i.path for i in chunk.items] for chunk, _ in _chunks_of(batch, store, force=True)]
    assert parts == [(["a", "bad", "b"], [0, 2], [[0, 1], [4, 5]]), (["a2", "c"], [0, 1], [[6, 7], [8, 9]])]
    assert forced == [["a", "bad", "b", "a2", "c"]]


# ------------------------------------------------------------------------------ on a local Ray
@pytest.mark.slow
def test_predict_py_engine_ray_starts_ray_and_writes_the_single_process_catalog(scene, tmp_path, run_predict_py,
                                                                                table_rows):
    folder, model, reference = scene
    catalog = tmp_path / "ray.sqlite"
    done = run_predict_py(f"input={folder}", f"model={model}", f"catalog={catalog}", "engine=ray",
                          "ray.num_cpus=2", "ray.cpus_per_worker=0.5", "ray.decode_cpus=0.5", "batch_size=8",
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 3, done.stderr[-3000:]  # bad files: done, some failed
    assert "classified 30, reused by content hash 1, skipped as already done 0, failed 6" in done.stdout
    for table in TABLES:
        assert table_rows(catalog, table) == table_rows(reference, table), table


@pytest.mark.slow
def test_two_ray_workers_write_the_single_process_catalog(scene, local_ray, tmp_path, table_rows):
    folder, model, reference = scene
    catalog = tmp_path / "ray.sqlite"
    settings = RayConfig(workers=2, cpus_per_worker=0.5, decode_cpus=0.5, window=16)
    summary = run_predict_ray(options(folder, model, catalog), settings, load_bundle(str(model)), progress=False)
    assert (summary.classified, summary.reused, summary.skipped, summary.failed) == (30, 1, 0, 6)
    assert summary.exit_code == 3
    for table in TABLES:
        assert table_rows(catalog, table) == table_rows(reference, table), table
    again = run_predict_ray(options(folder, model, catalog), settings, load_bundle(str(model)), progress=False)
    assert (again.classified, again.skipped) == (0, 31)  # incremental: unchanged files are not read
    assert local_ray.is_initialized()  # a Ray the caller started is left running


@pytest.mark.slow
def test_a_killed_ray_job_run_again_gives_the_uninterrupted_catalog(scene, local_ray, tmp_path, monkeypatch,
                                                                    write_batch, table_rows):
    folder, model, reference = scene
    catalog = tmp_path / "ray.sqlite"
    settings = RayConfig(workers=1, cpus_per_worker=0.5, decode_cpus=0.5, window=16)
    write_batch = PredictionStore.write_batch
    calls = []

    def killed_after_two_batches(self, predictions, errors):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(predictions) + len(errors))
        write_batch(self, predictions, errors)

    monkeypatch.setattr(PredictionStore, "write_batch", killed_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        run_predict_ray(options(folder, model, catalog, batch_size=8), settings, load_bundle(str(model)),
                        progress=False)
    monkeypatch.setattr(PredictionStore, "write_batch", write_batch)
    written = sum(len(table_rows(catalog, t)) for t in TABLES)
    assert written == sum(calls) and 0 < written < 37  # two whole batches committed, nothing else

    summary = run_predict_ray(options(folder, model, catalog, batch_size=8), settings, load_bundle(str(model)),
                              progress=False)
    assert summary.skipped == len(table_rows(catalog, "predictions")) - summary.classified - summary.reused
    for table in TABLES:
        assert table_rows(catalog, table) == table_rows(reference, table), table


@pytest.mark.slow
@pytest.mark.parametrize("runtime", [r for r in ("onnxruntime", "openvino") if installed(r)])
def test_ray_on_an_exported_runtime_writes_the_local_catalog_of_that_runtime(scene, local_ray, tmp_path, runtime,
                                                                             table_rows):
    """The actors build the driver's classifier: the same export (made and checked by the Ray run, then
    found by the local one), the same rows as predict.py's own process on that runtime."""
    folder, model, _ = scene
    shutil.rmtree(model.with_name(model.stem + ".export"), ignore_errors=True)  # made by an earlier test
    settings = RayConfig(workers=1, cpus_per_worker=0.5, decode_cpus=0.5)
    on_ray, local = tmp_path / "ray.sqlite", tmp_path / "local.sqlite"
    out = io.StringIO()
    summary = run_predict_ray(options(folder, model, on_ray, runtime=runtime), settings, load_bundle(str(model)),
                              out=out, progress=False)
    assert summary.inference == f"{runtime} fp32" and (summary.classified, summary.reused) == (30, 1)
    assert "checked against eager PyTorch" in out.getvalue()  # exported before the actors started
    run_predict(options(folder, model, local, runtime=runtime), load_bundle(str(model)), out=io.StringIO(),
                progress=False)
    for table in TABLES:
        assert table_rows(on_ray, table) == table_rows(local, table), table


@pytest.mark.slow
def test_ray_holds_a_source_images_crops_across_windows_as_one_process_does(local_ray, tmp_path, tiny_bundle,
                                                                            table_rows, write_source_crops,
                                                                            source_prior_bundle):
    folder, model = write_source_crops(tmp_path / "in"), tiny_bundle(tmp_path / "m.pt")
    run_predict(options(folder, model, tmp_path / "one.sqlite", batch_size=4), source_prior_bundle(model), progress=False)
    settings = RayConfig(workers=2, cpus_per_worker=0.5, decode_cpus=0.5, window=4)  # sources span windows
    summary = run_predict_ray(options(folder, model, tmp_path / "ray.sqlite", batch_size=2), settings,
                              source_prior_bundle(model), progress=False)
    assert summary.classified == 14
    assert table_rows(tmp_path / "ray.sqlite", "predictions") == table_rows(tmp_path / "one.sqlite", "predictions")
