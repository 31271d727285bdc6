"""Runtimes and precisions: exported models give eager's catalog, reduced precision says so, bad asks exit 2.

The tiny timm bundle of the predict tests (its calibration temperature set low, so probabilities
spread over (0, 1) and a wrong runtime would show) runs on every installed runtime; the runtimes
are the dev extra's, so CI exercises each path on CPU.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from support import BUNDLE_CLASSES, DISC_SCENES, ROOT, options

from deepmars.cli import EXIT_CANNOT_RUN, EXIT_USAGE
from deepmars.errors import ConfigError
from deepmars.inference import runtimes
from deepmars.inference.agreement import PROBABILITY_TOLERANCE, calibrated, measure
from deepmars.inference.exported import OpenVinoClassifier
from deepmars.inference.opening import open_classifier
from deepmars.models.exported import MANIFEST, new_export, read_export
from deepmars.models.loading import load_bundle
from deepmars.prediction import cli
from deepmars.prediction.options import QueryOptions
from deepmars.prediction.queries import run_query
from deepmars.prediction.runner import run_predict

EXPORTED = [r for r in ("onnxruntime", "openvino") if runtimes.installed(r)]
needs_openvino = pytest.mark.skipif(not runtimes.installed("openvino"), reason="openvino is not installed")
needs_bf16 = pytest.mark.skipif(not (runtimes.installed("openvino") and runtimes.cpu_has_bf16("openvino")),
                                reason="openvino with a bf16-capable CPU is needed")


@pytest.fixture
def images(tmp_path: Path, write_images) -> Path:
    write_images(tmp_path / "images", 24)
    return tmp_path / "images"


@pytest.fixture
def model(tmp_path: Path, sharp_bundle) -> Path:
    return sharp_bundle(tmp_path / "models" / "model.pt")


def predict(images: Path, model: Path, catalog: Path, **kw) -> tuple[object, str]:
    out = io.StringIO()
    summary = run_predict(options(images, model, catalog, **kw), load_bundle(str(model)), out=out, progress=False)
    return summary, out.getvalue()


@pytest.fixture
def rows_by_path(table_rows):
    """``rows_by_path(catalog) -> {path: prediction row}``, timestamps left out."""

    def by_path(catalog: Path) -> dict[str, tuple]:
        return {row[1]: row for row in table_rows(catalog, "predictions")}

    return by_path


def run_configs(catalog: Path) -> list[dict]:
    with sqlite3.connect(catalog) as conn:
        return [json.loads(c) for (c,) in conn.execute("SELECT config FROM runs ORDER BY started_at")]


# ------------------------------------------------------------------------------------------ fp32
@pytest.mark.slow
@pytest.mark.parametrize("runtime", EXPORTED)
def test_an_fp32_exported_run_writes_the_eager_catalog(tmp_path, images, model, runtime, rows_by_path):
    predict(images, model, tmp_path / "eager.sqlite", runtime="torch")
    summary, out = predict(images, model, tmp_path / "exported.sqlite", runtime=runtime)
    eager, exported = rows_by_path(tmp_path / "eager.sqlite"), rows_by_path(tmp_path / "exported.sqlite")
    assert summary.classified == 24 and summary.model_id == load_bundle(str(model)).model_id
    assert eager.keys() == exported.keys()
    confidences = [row[12] for row in eager.values()]
    assert max(confidences) - min(confidences) > 0.3  # the comparison below can fail
    for path, row in eager.items():
        other = exported[path]
        assert other[:12] == row[:12]  # model id, file identity, metadata and predicted class
        assert other[12] == pytest.approx(row[12], abs=PROBABILITY_TOLERANCE)
        assert [c["class"] for c in json.loads(other[13])] == [c["class"] for c in json.loads(row[13])]
    assert run_configs(tmp_path / "exported.sqlite")[0]["inference"]["runtime"] == runtime
    assert "saved to" in out and (model.parent / "model.export" / MANIFEST).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("runtime", EXPORTED)
def test_test_time_views_are_applied_by_exported_runtimes_as_by_eager(tmp_path, images, runtime, sharp_bundle,
                                                                      rows_by_path):
    model = sharp_bundle(tmp_path / "views" / "model.pt", views=("identity", "hflip", "rot90"))
    predict(images, model, tmp_path / "eager.sqlite", runtime="torch")
    predict(images, model, tmp_path / "fast.sqlite", runtime=runtime)
    single = sharp_bundle(tmp_path / "single" / "model.pt")
    predict(images, single, tmp_path / "single.sqlite", runtime="torch")
    eager, fast = rows_by_path(tmp_path / "eager.sqlite"), rows_by_path(tmp_path / "fast.sqlite")
    assert [fast[p][11] for p in eager] == [eager[p][11] for p in eager]
    assert max(abs(fast[p][12] - eager[p][12]) for p in eager) <= PROBABILITY_TOLERANCE
    one_view = rows_by_path(tmp_path / "single.sqlite")
    assert any(abs(one_view[p][12] - eager[p][12]) > 0.01 for p in eager)  # the views change the answers


@pytest.mark.slow
@needs_openvino
def test_the_export_is_made_once_and_rows_are_shared_with_eager(tmp_path, images, model, monkeypatch, write_images):
    catalog = tmp_path / "catalog.sqlite"
    predict(images, model, catalog, runtime="torch")
    write_images(images, 4, start=100)
    summary, _ = predict(images, model, catalog, runtime="openvino")
    assert (summary.skipped, summary.classified) == (24, 4)  # fp32 rows of any runtime are the same model's
    manifest = json.loads((model.parent / "model.export" / MANIFEST).read_text())
    assert {"onnxruntime/fp32", "openvino/fp32"} & set(manifest["checks"])
    import deepmars.inference.opening as opening

    monkeypatch.setattr(opening, "build_export", lambda *a, **k: pytest.fail("exported again"))
    write_images(images, 2, start=200)
    summary, out = predict(images, model, catalog, runtime="openvino")
    assert summary.classified == 2 and "saved to" not in out


@pytest.mark.slow
@needs_openvino
def test_a_retrained_bundle_at_the_same_path_is_exported_again(tmp_path, images, model, sharp_bundle, rows_by_path):
    predict(images, model, tmp_path / "a.sqlite", runtime="openvino")
    sharp_bundle(model, seed=1)
    predict(images, model, tmp_path / "b.sqlite", runtime="openvino")
    predict(images, model, tmp_path / "eager.sqlite", runtime="torch")
    manifest = json.loads((model.parent / "model.export" / MANIFEST).read_text())
    assert manifest["bundle_sha256"] == load_bundle(str(model)).sha256
    b, eager = rows_by_path(tmp_path / "b.sqlite"), rows_by_path(tmp_path / "eager.sqlite")
    assert all(b[p][12] == pytest.approx(eager[p][12], abs=PROBABILITY_TOLERANCE) for p in eager)


@pytest.mark.slow
@needs_openvino
def test_an_fp32_runtime_that_is_not_exact_stops_before_any_row(tmp_path, images, model, monkeypatch, predict_config,
                                                                table_rows):
    real = OpenVinoClassifier._logits
    off = np.array([0.01, 0, 0, 0, 0], dtype=np.float32)  # a shift of all logits would not change a probability
    monkeypatch.setattr(OpenVinoClassifier, "_logits", lambda self, px: real(self, px) + off)
    cfg = predict_config(f"input={images}", f"model={model}", f"catalog={tmp_path / 'c.sqlite'}",
                         "runtime=openvino", "num_workers=0")
    assert cli.main(cfg) == EXIT_CANNOT_RUN
    assert table_rows(tmp_path / "c.sqlite", "predictions") == []
    assert not (model.parent / "model.export").exists()  # an unchecked export is never saved


@pytest.mark.slow
@needs_openvino
def test_the_exported_model_alone_classifies(tmp_path, images, model, rows_by_path):
    """The ONNX file and the IR carry classes, preprocessing and temperature: no bundle needed."""
    import onnxruntime as ort
    from PIL import Image

    from deepmars.models import onnx_graph, openvino_ir

    predict(images, model, tmp_path / "c.sqlite", runtime="openvino")
    folder = model.parent / "model.export"
    meta = onnx_graph.read_metadata(folder / "model.onnx")
    assert openvino_ir.read_metadata(folder / "openvino" / "model.xml") == meta
    pre, classes = json.loads(meta["preprocess"]), json.loads(meta["class_names"])
    stored = rows_by_path(tmp_path / "c.sqlite")
    paths = sorted(stored)[:5]
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((pre["resize"], pre["resize"]),
                                                                      Image.BILINEAR)) for p in paths])
    logits = ort.InferenceSession(str(folder / "model.onnx")).run(None, {"pixels": pixels})[0]
    probs = calibrated(logits, float(meta["temperature"]))
    for path, p in zip(paths, probs, strict=True):
        assert classes[int(p.argmax())] == stored[path][11]
        assert float(p.max()) == pytest.approx(stored[path][12], abs=PROBABILITY_TOLERANCE)
    assert classes == BUNDLE_CLASSES and meta["bundle_sha256"] == load_bundle(str(model)).sha256


def test_a_batch_splits_into_contiguous_near_equal_slices_in_order():
    from deepmars.inference.exported import slices

    assert slices(64, 2) == [slice(0, 32), slice(32, 64)]
    assert slices(5, 3) == [slice(0, 2), slice(2, 3), slice(3, 5)]
    assert slices(1, 4) == [slice(0, 1)]
    assert slices(0, 2) == []
    for n, parts in [(7, 2), (64, 3), (3, 8)]:
        got = slices(n, parts)
        assert [i for s in got for i in range(n)[s]] == list(range(n))
        assert max(s.stop - s.start for s in got) - min(s.stop - s.start for s in got) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("runtime", EXPORTED)
def test_threads_run_as_streams_on_slices_and_give_one_streams_logits(tmp_path, images, model, runtime):
    """threads=2 splits a batch of 7 in 2 slices run at once; each image's logits are those of one stream."""
    import os

    from deepmars.prediction.decode import DecodeSettings, process_path

    bundle = load_bundle(str(model))
    settings = DecodeSettings(bundle.preprocess, None, str(tmp_path / "none.sqlite"), "m", reuse=False)
    pixels = np.stack([process_path(str(p), settings)[1] for p in sorted(images.iterdir())[:7]])
    with open_classifier(bundle, runtime, "fp32", threads=1, report=lambda line: None) as one:
        reference = one.logits(pixels)
    with open_classifier(bundle, runtime, "fp32", threads=2, report=lambda line: None) as two:
        # OpenVINO makes no more streams than cores.
        assert (two.streams if runtime == "onnxruntime" else len(two.requests)) == min(2, os.cpu_count())
        np.testing.assert_allclose(two.logits(pixels), reference, rtol=0, atol=1e-6)
        np.testing.assert_allclose(two.logits(pixels[:1]), reference[:1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("runtime", EXPORTED[:1])
def test_the_eager_check_behind_an_exported_runtime_runs_on_one_torch_thread(tmp_path, images, model, runtime,
                                                                              monkeypatch):
    import torch

    from deepmars.inference.classifier import TorchClassifier

    seen = []
    real = TorchClassifier._logits
    monkeypatch.setattr(TorchClassifier, "_logits", lambda self, px: (seen.append(torch.get_num_threads()),
                                                                      real(self, px))[1])
    before = torch.get_num_threads()
    summary, _ = predict(images, model, tmp_path / "c.sqlite", runtime=runtime, threads=2)
    assert summary.classified == 24 and seen == [1] and torch.get_num_threads() == before


# ------------------------------------------------------------------------------- reduced precision
@pytest.mark.slow
@needs_bf16
def test_bf16_rows_go_under_their_own_model_id_and_say_how_they_agree(tmp_path, images, model):
    catalog = tmp_path / "catalog.sqlite"
    predict(images, model, catalog, runtime="torch")
    summary, out = predict(images, model, catalog, runtime="openvino", precision="bf16")
    base = load_bundle(str(model)).model_id
    assert summary.model_id == f"{base}+openvino-bf16" and summary.classified == 24  # nothing reused from fp32
    assert "top-1 agreement with eager fp32" in out and "reduced precision" in out
    with sqlite3.connect(catalog) as conn:
        models = dict(conn.execute("SELECT model_id, model_cfg FROM models").fetchall())
    assert json.loads(models[summary.model_id])["inference"]["precision"] == "bf16"
    assert "inference" not in json.loads(models[base])
    listing = io.StringIO()
    run_query(QueryOptions(catalog=catalog, min_confidence=0), listing)
    lines = listing.getvalue().splitlines()
    assert lines[0].startswith(f"model {base}+openvino-bf16")  # the latest run's, named
    assert lines[1].startswith("note: rows classified at reduced precision (openvino bf16)")
    listing = io.StringIO()
    run_query(QueryOptions(catalog=catalog, model=str(model), min_confidence=0), listing)
    lines = listing.getvalue().splitlines()
    assert lines[0].startswith(f"model {base} ")  # the bundle's own (fp32) rows
    assert lines[1] == (f"note: exact (fp32) rows; this catalog also holds reduced-precision rows of this model: "
                        f"{base}+openvino-bf16 (model=<that id> reads them)")
    assert "24 images match" in listing.getvalue()


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(runtimes, "cpu_has_bf16", lambda runtime: False)
    with pytest.raises(ConfigError, match="native bf16"):
        runtimes.choose("torch", "bf16")


def test_int8_without_a_quantized_export_is_a_usage_error(tmp_path, images, model, predict_config):
    if not runtimes.installed("openvino"):
        pytest.skip("openvino is not installed")
    cfg = predict_config(f"input={images}", f"model={model}", f"catalog={tmp_path / 'c.sqlite'}", "precision=int8")
    assert cli.main(cfg) == EXIT_USAGE


# ------------------------------------------------------------------------------------- choosing
@pytest.mark.parametrize("runtime,precision,why", [
    ("torch", "int8", "runs on openvino"), ("onnxruntime", "bf16", "runs on openvino or torch"),
    ("tensorrt", "fp32", "got 'tensorrt', allowed: one of auto, torch"),
    ("torch", "fp16", "got 'fp16', allowed: one of fp32, bf16, int8")])
def test_impossible_combinations_are_usage_errors(runtime, precision, why):
    with pytest.raises(ConfigError, match=why):
        runtimes.choose(runtime, precision)


def test_auto_takes_the_fastest_installed_runtime(monkeypatch):
    present = {"torch", "onnxruntime", "onnx"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in present else None)
    assert runtimes.choose("auto", "fp32") == "onnxruntime"
    present.add("openvino")
    assert runtimes.choose("auto", "fp32") == "openvino"
    present.difference_update({"openvino", "onnxruntime"})
    assert runtimes.choose("auto", "fp32") == "torch"
    with pytest.raises(ConfigError, match="none of which is installed"):
        runtimes.choose("auto", "int8")


def test_a_runtime_that_is_not_installed_exits_2_with_how_to_install_it(tmp_path, images, model, monkeypatch,
                                                                         capsys, predict_config):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    cfg = predict_config(f"input={images}", f"model={model}", f"catalog={tmp_path / 'c.sqlite'}",
                         "runtime=onnxruntime")
    assert cli.main(cfg) == EXIT_USAGE
    assert 'pip install "deepmars[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite").exists()


def test_a_bad_runtime_key_names_the_allowed_values(tmp_path, capsys, predict_config):
    cfg = predict_config("input=x", "model=y", "runtime=fast")
    assert cli.main(cfg) == EXIT_USAGE
    assert "runtime: got 'fast', allowed: one of auto, torch, onnxruntime, openvino" in capsys.readouterr().err


@pytest.mark.parametrize("views", [("identity",), ("identity", "hflip", "rot90")])
def test_eager_fp32_is_its_own_reference(tmp_path, views, sharp_bundle):
    bundle = load_bundle(str(sharp_bundle(tmp_path / "model.pt", views=views)))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 72, 72, 3), dtype=np.uint8)
    with open_classifier(bundle, "torch", "fp32", threads=1) as classifier:
        assert classifier.model_id == bundle.model_id and classifier.variant == ""
        # Same threads: eager PyTorch itself differs in the 7th digit between thread counts.
        np.testing.assert_array_equal(classifier.probabilities(pixels),
                                      bundle.predict_proba(bundle.preprocess.eval_batch(pixels)))


def test_an_export_without_the_bundles_views_is_not_reused(tmp_path, sharp_bundle):
    bundle = load_bundle(str(sharp_bundle(tmp_path / "model.pt", views=("identity", "hflip"))))
    export = new_export(bundle, tmp_path / "model.export")
    export.folder.mkdir()
    export.write_manifest()
    assert read_export(export.folder, bundle) is not None and export.manifest["views"] == ["identity", "hflip"]
    del export.manifest["views"]  # a graph exported before the views were in it: one row per image
    export.write_manifest()
    assert read_export(export.folder, bundle) is None


def test_agreement_counts_flipped_classes_and_accuracy():
    reference = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.99]], dtype=np.float32)
    other = reference + np.array([[0, 0], [0, 0], [0, 0.02]], dtype=np.float32)
    a = measure(reference, other, 1.0, "three images", targets=np.array([0, 1, 0]))
    assert a.top1_agreement == pytest.approx(2 / 3) and a.accuracy == pytest.approx(2 / 3)
    assert a.reference_accuracy == 1.0 and a.max_abs_logit == pytest.approx(0.02) and not a.exact
    assert measure(reference, reference + 1e-6, 1.0, "same").exact


# --------------------------------------------------------------------- landmarks and evaluate
@pytest.mark.slow
@needs_openvino
def test_landmarks_classify_on_openvino_writes_the_eager_landmark_rows(tmp_path, write_scene, classify, known_bundle,
                                                                       table_rows):
    for name in DISC_SCENES:
        write_scene(tmp_path / "images", name)
    eager = classify(tmp_path / "images", tmp_path / "eager.sqlite", bundle=known_bundle())
    fast = classify(tmp_path / "images", tmp_path / "fast.sqlite", bundle=known_bundle(), runtime="openvino")
    assert (fast.model_id, fast.inference) == (eager.model_id, "openvino fp32") and fast.landmarks == 7
    rows = table_rows(tmp_path / "eager.sqlite", "landmarks")
    fast_rows = table_rows(tmp_path / "fast.sqlite", "landmarks")
    assert [r[:16] for r in rows] == [r[:16] for r in fast_rows]  # boxes and classes
    assert [r[16] for r in fast_rows] == pytest.approx([r[16] for r in rows], abs=PROBABILITY_TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", EXPORTED[-1:])  # the one auto picks; the other shares every line
def test_evaluate_on_an_exported_runtime_reports_the_eager_metrics(tmp_path, runtime, sample_msl_bundle):
    from hydra import compose, initialize_config_dir

    from deepmars.evaluation.rerun import evaluate_model

    model = sample_msl_bundle(tmp_path / "model.pt")
    metrics = {}
    for name in ("torch", runtime):
        with initialize_config_dir(config_dir=str(ROOT / "conf" / "evaluate"), version_base="1.3"):
            cfg = compose("evaluate", overrides=[f"model={model}", "dataset=sample_msl", "split=files",
                                                 "tracking=none", f"runtime={name}", f"output_dir={tmp_path / name}"])
        metrics[name] = evaluate_model(cfg)
    assert metrics[runtime]["test_acc"] == metrics["torch"]["test_acc"]
    assert metrics[runtime] == pytest.approx(metrics["torch"], abs=1e-4)
    assert f"({runtime} fp32)" in (tmp_path / runtime / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("runtime", EXPORTED)
def test_real_msl_images_get_the_eager_catalog_on_exported_runtimes(tmp_path, model, runtime, rows_by_path):
    import os

    data = os.environ.get("DEEPMARS_DATA")
    if not data or not (Path(data) / "msl" / "calibrated").is_dir():
        pytest.skip("DEEPMARS_DATA with msl/calibrated is needed (e.g. DEEPMARS_DATA=~/data holding msl/)")
    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted((Path(data) / "msl" / "calibrated").glob("*.JPG"))[:96]))
    predict(listing, model, tmp_path / "eager.sqlite", runtime="torch", num_workers=1, batch_size=32)
    predict(listing, model, tmp_path / "fast.sqlite", runtime=runtime, num_workers=1, batch_size=32)
    eager, fast = rows_by_path(tmp_path / "eager.sqlite"), rows_by_path(tmp_path / "fast.sqlite")
    assert len(eager) == 96 and eager.keys() == fast.keys()
    assert [fast[p][11] for p in eager] == [eager[p][11] for p in eager]
    assert max(abs(fast[p][12] - eager[p][12]) for p in eager) <= PROBABILITY_TOLERANCE


def test_auto_falls_back_to_torch_when_the_network_cannot_be_exported(tmp_path, model, monkeypatch):
    import deepmars.inference.opening as opening
    from deepmars.errors import WeightsError

    if not EXPORTED:
        pytest.skip("no exported runtime is installed")

    def cannot(*args, **kwargs):
        raise WeightsError("model m: the network cannot be exported to ONNX (an op it lacks)")

    monkeypatch.setattr(opening, "build_export", cannot)
    lines: list[str] = []
    with open_classifier(load_bundle(str(model)), "auto", "fp32", threads=1, report=lines.append) as classifier:
        assert classifier.label == "torch fp32"
    assert lines == ["runtime=auto: model m: the network cannot be exported to ONNX (an op it lacks); "
                     "classifying with torch instead"]
    with pytest.raises(WeightsError, match="cannot be exported"):
        with open_classifier(load_bundle(str(model)), EXPORTED[0], "fp32", threads=1):
            pass


def test_near_ties_of_a_reduced_precision_are_classified_again_in_fp32(model):
    from deepmars.inference.classifier import Classifier
    from deepmars.inference.near_ties import NEAR_TIE_MARGIN, NearTiesExact, near_ties

    class Fixed(Classifier):
        def __init__(self, bundle, logits):
            super().__init__(bundle, "fp32")
            self.fixed, self.seen = logits, []

        def _logits(self, pixels):
            self.seen.append(len(pixels))
            return self.fixed[: len(pixels)].copy()

    bundle = load_bundle(str(model))
    reduced = np.array([[3.0, 0.0, 0, 0, 0], [1.0, 1.0 + NEAR_TIE_MARGIN / 2, 0, 0, 0], [0, 0, 0, 2.0, 0]],
                       dtype=np.float32)
    exact = Fixed(bundle, np.array([[0, 0, 9.0, 0, 0]], dtype=np.float32))
    classifier = NearTiesExact(Fixed(bundle, reduced), exact)
    logits = classifier.logits(np.zeros((3, 72, 72, 3), dtype=np.uint8))
    assert near_ties(reduced).tolist() == [False, True, False]
    np.testing.assert_array_equal(logits, [reduced[0], [0, 0, 9.0, 0, 0], reduced[2]])
    assert exact.seen == [1] and classifier.rechecked_fraction == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------- devices
def on_a_gpu(monkeypatch, module) -> None:
    """``module``'s resolve_device as on a machine with a GPU: auto and cuda give cuda:0."""
    import torch

    monkeypatch.setattr(module, "resolve_device",
                        lambda spec, key="device": torch.device("cpu" if spec == "cpu" else "cuda:0"))


def test_on_a_gpu_auto_takes_torch_and_the_exported_runtimes_are_refused():
    assert runtimes.choose("auto", "fp32", "cuda:0") == "torch"
    assert runtimes.choose("torch", "fp32", "cuda:0") == "torch"
    for runtime in ("onnxruntime", "openvino"):
        with pytest.raises(ConfigError, match=f"runtime: {runtime} runs on the CPU only, and device= gives cuda:0 "
                                              f"here; set device=cpu to classify with {runtime}, or runtime=torch"):
            runtimes.choose(runtime, "fp32", "cuda:0")
        runtimes.check_device(runtime, "cpu")
    with pytest.raises(ConfigError, match="precision: int8 runs on openvino, on the CPU only.*set device=cpu"):
        runtimes.choose("auto", "int8", "cuda:0")


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_predict_with_an_exported_runtime_on_a_cuda_device_exits_2_naming_both_keys(tmp_path, images, model,
                                                                                    monkeypatch, capsys, device,
                                                                                    predict_config):
    from deepmars.prediction import options as predict_options

    on_a_gpu(monkeypatch, predict_options)
    cfg = predict_config(f"input={images}", f"model={model}", f"catalog={tmp_path / 'c.sqlite'}",
                         "runtime=openvino", f"device={device}")
    assert cli.main(cfg) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "runtime: openvino runs on the CPU only, and device= gives cuda:0 here; set device=cpu" in err
    assert not (tmp_path / "c.sqlite").exists()
    on_a_gpu(monkeypatch, predict_options)
    opts = predict_options.predict_options(predict_config(f"input={images}", f"model={model}", "runtime=openvino",
                                                          "device=cpu"))
    assert (opts.runtime, opts.device) == ("openvino", "cpu")


def test_landmarks_and_evaluate_refuse_an_exported_runtime_on_a_cuda_device(tmp_path, monkeypatch, capsys,
                                                                            landmark_config):
    from hydra import compose, initialize_config_dir

    from deepmars.evaluation import rerun
    from deepmars.landmarks import cli as landmarks_cli
    from deepmars.landmarks import options as landmarks_options

    on_a_gpu(monkeypatch, landmarks_options)
    cfg = landmark_config("command=classify", f"input={tmp_path}", "model=m.pt", "runtime=onnxruntime",
                          "device=cuda")
    assert landmarks_cli.main(cfg) == EXIT_USAGE
    assert "runtime: onnxruntime runs on the CPU only" in capsys.readouterr().err
    on_a_gpu(monkeypatch, rerun)
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "evaluate"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"model={tmp_path / 'absent.pt'}", "dataset=sample_msl", "split=files",
                                             "tracking=none", "runtime=openvino", "device=cuda:0",
                                             f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(ConfigError, match="runtime: openvino runs on the CPU only.*set device=cpu"):
        rerun.evaluate_model(cfg)  # before the model is read: the file does not exist


@pytest.mark.parametrize("runtime", ["torch", *EXPORTED])
def test_a_ray_worker_builds_the_drivers_classifier(tmp_path, images, model, runtime):
    """The plan a Ray actor gets (model, runtime, precision, the checked export's files) builds a classifier
    that answers as the driver's does, with the same catalog identity."""
    from PIL import Image

    from deepmars.prediction.decode import DecodeSettings
    from deepmars.prediction.ray_engine import WorkerPlan, check_first_images

    bundle = load_bundle(str(model))
    paths = sorted(str(p) for p in images.rglob("*.JPG"))
    decode = DecodeSettings(preprocess=bundle.preprocess, metadata_spec=None, catalog_path="", model_id="", reuse=False)
    with open_classifier(bundle, runtime, "fp32", threads=1, report=lambda line: None) as driver:
        check_first_images(driver, paths, decode)
        assert driver.on_first_batch is None  # checked (and a new export published) before any worker starts
        plan = WorkerPlan.of(driver, 1, "cpu")
        assert bool(plan.export_files) == (runtime != "torch")
        worker = plan.build(tmp_path / "worker")
        pixels = np.stack([bundle.preprocess.from_pil(Image.open(p)) for p in paths[:6]])
        np.testing.assert_array_equal(worker.probabilities(pixels), driver.probabilities(pixels))
        assert (worker.runtime, worker.model_id, worker.info()) == (driver.runtime, driver.model_id, driver.info())
