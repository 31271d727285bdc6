"""``export_model.py``: export a trained model once for the fast runtimes, check it, measure what it gives up.

    python export_model.py model=runs:/<id> dataset=msl split=sol [int8=true]

1. the bundle's network with its preprocessing -> ONNX (and OpenVINO IR when installed);
2. with ``int8=true``: NNCF post-training quantization calibrated on ``calibration_images``
   decoded training images of the model's data set;
3. every installed runtime x precision classifies the ``check_split`` images of that data set
   (all of them by default) next to eager fp32 PyTorch: top-1 agreement, largest difference in
   logits and probabilities, accuracy on the labels, model-only img/s on this machine. An fp32
   runtime off by more than the tolerance (``inference.agreement``) stops the export, and
   nothing is saved;
4. the export (files, manifest with every measurement, ``report.md``) is saved beside the bundle
   file or logged to the model's MLflow run as ``export/``, where predict.py, ``landmarks.py
   classify`` and evaluate.py find it and print its measured agreement when they run reduced precision.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from deepmars.config import ExportModelConfig
from deepmars.data.cache import DecodedImages
from deepmars.data.dataset import Sample, load_dataset
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError, WeightsError
from deepmars.evaluation.apply import classifier_logits, decode_for
from deepmars.evaluation.inputs import check_class_names
from deepmars.inference.agreement import Agreement, measure
from deepmars.inference.classifier import Classifier, TorchClassifier
from deepmars.inference.model import prepared
from deepmars.inference.near_ties import NEAR_TIE_MARGIN
from deepmars.inference.opening import check_key, runtime_classifier, torch_classifier
from deepmars.inference.runtimes import cpu_has_bf16, install_hint, installed
from deepmars.models.bundle import ModelBundle
from deepmars.models.exported import FILES, Export, build_export, export_home, publish
from deepmars.models.loading import load_bundle
from deepmars.models.onnx_graph import metadata
from deepmars.schema import validate
from deepmars.splits import make_splits

log = logging.getLogger(__name__)

# Every runtime x precision the export can be measured on, in the order of the printed table.
CANDIDATES = (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("torch", "bf16"),
              ("openvino", "bf16"), ("openvino", "int8"))
REPORT = "report.md"


@dataclass(frozen=True)
class Measured:
    """One runtime x precision on the check images."""

    runtime: str
    precision: str
    agreement: Agreement
    images_per_second: float
    rechecked: float | None = None  # fraction of near-ties re-run in fp32 (reduced precision)


def run_export(cfg: DictConfig) -> list[Measured]:
    """Export, quantize if asked, measure, save; returns the measured table."""
    opts = validate(ExportModelConfig, cfg)
    _check_installed(opts)
    bundle = load_bundle(str(opts.model), opts.tracking_uri)
    ds = load_dataset(opts.dataset, resolve_root(opts.dataset))
    check_class_names(bundle.class_names, ds.class_names)
    splits = make_splits(ds, opts.split)
    split = str(opts.check_split.value)
    checked = subset(splits[split], opts.check_images, opts.seed)
    if not checked:
        raise ConfigError(f"check_split: the {split} split of {ds.name} is empty under this split config")
    data = decode_for(bundle, checked, opts.num_workers, f"decode {split}")
    on = f"{ds.name} {split} split, {len(data)} images"
    home = export_home(bundle, opts.tracking_uri)
    with prepared(bundle, opts.threads), tempfile.TemporaryDirectory(prefix="deepmars-export-") as tmp:
        export = build_export(bundle, Path(tmp) / "export", openvino=installed("openvino"))
        if opts.int8:
            _quantize(bundle, export, splits["train"], opts, ds.name)
        table = measure_all(bundle, export, data, opts, on)
        wrong = [m for m in table if m.precision == "fp32" and not m.agreement.exact]
        if wrong:
            raise WeightsError("the export does not reproduce eager PyTorch, nothing was saved: " + "; ".join(
                f"{m.runtime} fp32: {m.agreement.summary()}" for m in wrong))
        for m in table:
            export.checks[check_key(m.runtime, m.precision)] = {**m.agreement.to_dict(),
                                                                "images_per_second": m.images_per_second,
                                                                "near_ties_rechecked": m.rechecked}
        text = report(bundle, export, table, on, opts)
        (export.folder / REPORT).write_text(text)
        where = publish(export, home)
    print(text)
    print(f"saved to {where}; predict.py, landmarks.py classify and evaluate.py use it with runtime=auto|onnxruntime|"
          "openvino (precision=bf16|int8 to opt in to the reduced ones above)")
    return table


def _check_installed(opts: DictConfig) -> None:
    if not installed("onnxruntime") and not installed("openvino"):
        raise ConfigError(f"nothing to export for: neither onnxruntime nor openvino is installed; install one "
                          f"({install_hint('openvino')} or {install_hint('onnxruntime')})")
    if opts.int8 and not (installed("openvino") and _module("nncf")):
        raise ConfigError(f"int8: quantization needs openvino and nncf; install them with {install_hint('openvino')}")


def _module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def subset(samples: list[Sample], n: int, seed: int) -> list[Sample]:
    """``n`` samples drawn with ``seed`` (in their split's order), or all of them when n is 0 or more."""
    if n == 0 or n >= len(samples):
        return list(samples)
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=n, replace=False))
    return [samples[i] for i in keep]


def _quantize(bundle: ModelBundle, export: Export, train: list[Sample], opts: DictConfig, dataset: str) -> None:
    """NNCF int8 IR from the fp32 IR, activation ranges from decoded training images (never the check split)."""
    from deepmars.models.openvino_ir import quantize_int8

    calibration = decode_for(bundle, subset(train, opts.calibration_images, opts.seed), opts.num_workers,
                             "decode calibration images")
    if not len(calibration):
        raise ConfigError(f"int8: the train split of {dataset} has no readable images to calibrate on")
    quantize_int8(export.folder / FILES["openvino"], export.folder / FILES["openvino-int8"],
                  (img[None] for img in calibration.images), len(calibration), metadata(bundle))
    export.add_file("openvino-int8", quantized_from=FILES["openvino"],
                    calibration={"dataset": dataset, "split": "train", "images": len(calibration), "seed": opts.seed,
                                 "method": "NNCF post-training quantization, performance preset, first convolution "
                                          "and final layer kept float32"})


def measure_all(bundle: ModelBundle, export: Export, data: DecodedImages, opts: DictConfig,
                on: str) -> list[Measured]:
    """Eager fp32 first (the reference), then every installed runtime x precision the CPU supports."""
    reference, rate = _timed(TorchClassifier(bundle, "fp32"), data, opts.batch_size)
    table = [Measured("torch", "fp32", measure(reference, reference, bundle.temperature, on, data.targets), rate)]
    for runtime, precision in CANDIDATES[1:]:
        if not _measurable(runtime, precision, export):
            continue
        if runtime == "torch":
            classifier = torch_classifier(bundle, precision)
        else:
            classifier = runtime_classifier(bundle, export, runtime, precision, opts.threads)
        logits, rate = _timed(classifier, data, opts.batch_size)
        classifier.close()
        table.append(Measured(runtime, precision, measure(reference, logits, bundle.temperature, on, data.targets),
                              rate, getattr(classifier, "rechecked_fraction", None)))
    return table


def _measurable(runtime: str, precision: str, export: Export) -> bool:
    if not installed(runtime):
        return False
    if precision == "bf16" and not cpu_has_bf16(runtime):
        return False
    kind = {"onnxruntime": "onnx", "openvino": "openvino-int8" if precision == "int8" else "openvino"}.get(runtime)
    return kind is None or kind in export.files


def _timed(classifier: Classifier, data: DecodedImages, batch_size: int) -> tuple[np.ndarray, float]:
    """Logits of every image and the model-only rate (after one warm-up batch: kernels picked, memory mapped)."""
    classifier.logits(data.images[:batch_size])
    getattr(classifier, "reset_counts", lambda: None)()  # near-ties of the warm-up batch are counted once
    start = time.perf_counter()
    logits = classifier_logits(classifier, data, batch_size)
    return logits, len(data) / max(time.perf_counter() - start, 1e-9)


def report(bundle: ModelBundle, export: Export, table: list[Measured], on: str, opts: DictConfig) -> str:
    """The measured table as Markdown (printed, and saved in the export as report.md)."""
    onnx = export.files["onnx"]
    lines = [f"# Export of {bundle.model_id}", "",
             f"ONNX opset {onnx['opset']}; files: {', '.join(sorted(r['file'] for r in export.files.values()))}; "
             f"tools: {', '.join(f'{k} {v}' for k, v in sorted(export.manifest['versions'].items()))}.",
             f"Test-time views: {', '.join(bundle.tta)} (made in the graph, combined as eager does).",
             f"Measured on {on}, batch {opts.batch_size}, threads {opts.threads or 'all'} "
             "(img/s: model only, this machine). fp32 runtimes must keep every probability within 1e-4 of eager's.",
             f"bf16 and int8 re-run in fp32 the images whose two best logits are within {NEAR_TIE_MARGIN} "
             "(near-ties re-run: their share).",
             "", "| runtime | precision | top-1 agreement with eager fp32 | max abs diff logits | max abs diff "
             "probabilities | accuracy | near-ties re-run | img/s |", "|---|---|---|---|---|---|---|---|"]
    for m in table:
        a = m.agreement
        rechecked = "" if m.rechecked is None else f"{100 * m.rechecked:.1f}%"
        lines.append(f"| {m.runtime} | {m.precision} | {100 * a.top1_agreement:.2f}% | {a.max_abs_logit:.2g} | "
                     f"{a.max_abs_probability:.2g} | {100 * a.accuracy:.2f}% | {rechecked} | "
                     f"{m.images_per_second:.1f} |")
    int8 = export.files.get("openvino-int8")
    if int8:
        c = int8["calibration"]
        lines += ["", f"int8: {c['method']}, calibrated on {c['images']} {c['dataset']} {c['split']} images "
                      f"(seed {c['seed']})."]
    return "\n".join(lines) + "\n"
