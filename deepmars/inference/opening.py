"""Open the classifier a run asked for: choose the runtime, find or make the export, check it.

``open_classifier`` is the single entry for predict.py, ``landmarks.py classify`` and evaluate.py:

1. ``runtimes.choose``: the runtime (``auto`` resolved; torch on a GPU, where the exported runtimes
   do not run), refusing what is not installed or what the device cannot do (a ConfigError: exit 2,
   with how to install it or what to set instead);
2. an exported runtime reuses the bundle's published export (beside the bundle file, or the run's
   ``export/`` artifacts) when its manifest names this bundle's content; otherwise the model is
   exported now (int8 is never made here: it needs calibration images, ``export_model.py``);
3. on the first batch a run classifies, up to ``CHECK_IMAGES`` of its images also go through eager
   fp32 PyTorch. An fp32 runtime that is not exact (``agreement.PROBABILITY_TOLERANCE``) stops the
   run before any row is written; reduced precision prints its measured agreement. An export made
   in step 2 is published only after every file in it passed this check against eager, so an
   unchecked export is never reused.

``make_classifier`` builds the classifier for a runtime already chosen: ``open_classifier`` uses it,
and so do the Ray engine's workers, given the export this process found or made and checked.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from deepmars.errors import ConfigError, WeightsError
from deepmars.inference.agreement import Agreement, measure
from deepmars.inference.classifier import Classifier, TorchClassifier
from deepmars.inference.model import prepared, torch_threads
from deepmars.inference.near_ties import NearTiesExact
from deepmars.inference.runtimes import choose, installed
from deepmars.models.bundle import ModelBundle
from deepmars.models.exported import Export, ExportHome, build_export, export_home, find_export, publish

CHECK_IMAGES = 8  # eager fp32 on 8 images of lite0 at 224 px: about 0.2 s once per run
KIND = {("onnxruntime", "fp32"): "onnx", ("openvino", "fp32"): "openvino", ("openvino", "bf16"): "openvino",
        ("openvino", "int8"): "openvino-int8"}
Report = Callable[[str], None]


def check_key(runtime: str, precision: str) -> str:
    """Where an export's manifest keeps the agreement of ``runtime`` at ``precision``."""
    return f"{runtime}/{precision}"


@contextlib.contextmanager
def open_classifier(bundle: ModelBundle, runtime: str = "torch", precision: str = "fp32", threads: int | None = None,
                    tracking_uri: str | None = None, report: Report = print, device: torch.device | None = None,
                    runs_on: str | None = None) -> Iterator[Classifier]:
    """The classifier for ``runtime`` x ``precision`` on ``device`` (default: the CPU), with torch's
    threads set (restored on exit).

    ``runs_on``: where the rows are classified when that is not here (the Ray engine's workers, e.g.
    "cuda"): the runtime is chosen for it, while this classifier exports and checks on ``device``.
    """
    device = device or torch.device("cpu")
    chosen = choose(runtime, precision, runs_on or str(device))
    with prepared(bundle, threads, device):
        classifier = _open(bundle, runtime, chosen, precision, threads, tracking_uri, report, device)
        try:
            yield classifier
        finally:
            classifier.close()


def _open(bundle: ModelBundle, asked: str, runtime: str, precision: str, threads: int | None,
          tracking_uri: str | None, report: Report, device: torch.device) -> Classifier:
    if runtime == "torch":
        classifier = make_classifier(bundle, "torch", precision, threads, device)
        if precision != "fp32":
            classifier.on_first_batch = _FirstBatch(classifier, None, None, False, report)
        return classifier
    scratch = Path(tempfile.mkdtemp(prefix="deepmars-export-"))
    try:
        classifier = _open_exported(bundle, asked, runtime, precision, threads, tracking_uri, report, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    classifier.add_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
    return classifier


def _open_exported(bundle: ModelBundle, asked: str, runtime: str, precision: str, threads: int | None,
                   tracking_uri: str | None, report: Report, scratch: Path) -> Classifier:
    kind = KIND[(runtime, precision)]
    home = export_home(bundle, tracking_uri)
    export = find_export(bundle, home, scratch / "found")
    fresh = export is None or kind not in export.files
    if fresh and precision == "int8":
        raise ConfigError(f"precision: int8 needs the model's quantized export, and {home.where} has none; make it "
                          f"once with python export_model.py model={bundle.model_id} dataset=<its data set> "
                          "split=<its split> int8=true (calibrated on training images, with its measured effect)")
    if fresh:
        try:
            export = build_export(bundle, scratch / "new", openvino=installed("openvino"))
        except WeightsError as exc:
            if asked != "auto":
                raise
            report(f"runtime=auto: {exc}; classifying with torch instead")
            return _open(bundle, "torch", "torch", precision, threads, tracking_uri, report, torch.device("cpu"))
    classifier = make_classifier(bundle, runtime, precision, threads, export=export)
    if precision != "fp32":
        recorded = export.checks.get(check_key(runtime, precision))
        report(f"{classifier.label}: reduced precision, rows under model id {classifier.model_id}; "
               + (f"measured when exported: {Agreement.from_dict(recorded).summary()}" if recorded else
                  "not yet measured on labeled images (export_model.py measures it on the test split)"))
    classifier.on_first_batch = _FirstBatch(classifier, export, home, fresh, report)
    return classifier


def make_classifier(bundle: ModelBundle, runtime: str, precision: str, threads: int | None = None,
                    device: torch.device | None = None, export: Export | None = None) -> Classifier:
    """The classifier of a chosen ``runtime`` (not auto): eager PyTorch on ``device``, or an exported
    runtime on ``export``'s files (CPU); the one factory of every run, local or on Ray workers."""
    if runtime == "torch":
        return torch_classifier(bundle, precision, device)
    if export is None:
        raise ValueError(f"runtime {runtime} needs the model's export")
    return runtime_classifier(bundle, export, runtime, precision, threads)


def torch_classifier(bundle: ModelBundle, precision: str, device: torch.device | None = None) -> Classifier:
    """Eager PyTorch; bf16 with its near-ties re-run in fp32 (``near_ties``)."""
    if precision == "fp32":
        return TorchClassifier(bundle, "fp32", device)
    classifier = NearTiesExact(TorchClassifier(bundle, precision, device), TorchClassifier(bundle, "fp32", device))
    classifier.variant = f"torch-{precision}"
    return classifier


def runtime_classifier(bundle: ModelBundle, export: Export, runtime: str, precision: str,
                       threads: int | None) -> Classifier:
    """The exported runtime's classifier on the export's (verified) file, with its catalog identity.

    Reduced precision gets the fp32 IR beside it for its near-ties (``near_ties``).
    """
    from deepmars.inference.exported import OnnxRuntimeClassifier, OpenVinoClassifier

    kind = KIND[(runtime, precision)]
    path = export.verify(kind)
    if runtime == "onnxruntime":
        classifier: Classifier = OnnxRuntimeClassifier(bundle, path, threads)
    else:
        classifier = OpenVinoClassifier(bundle, path, precision, threads)
    if precision != "fp32":
        exact = OpenVinoClassifier(bundle, export.verify(KIND[(runtime, "fp32")]), "fp32", threads)
        classifier = NearTiesExact(classifier, exact)
    record = export.files[kind]
    if precision == "int8":
        classifier.variant = f"openvino-int8-{record['sha256'][:8]}"  # another calibration, other rows
    elif precision != "fp32":
        classifier.variant = f"{runtime}-{precision}"
    classifier.details = {"export": {"file": record["file"], "sha256": record["sha256"],
                                     "opset": export.files.get("onnx", {}).get("opset")}}
    classifier.export = export
    return classifier


class _FirstBatch:
    """The check on a run's first batch (see the module docstring); runs once, inside ``logits``."""

    def __init__(self, classifier: Classifier, export: Export | None, home: ExportHome | None, fresh: bool,
                 report: Report):
        self.classifier, self.export, self.home, self.fresh, self.report = classifier, export, home, fresh, report

    def __call__(self, pixels: np.ndarray, logits: np.ndarray) -> None:
        c = self.classifier
        sample = pixels[:CHECK_IMAGES]
        reference = self._reference(sample)
        on = f"the first {len(sample)} images of this run"
        agreement = measure(reference, logits[:CHECK_IMAGES], c.bundle.temperature, on)
        c.details["first_batch_check"] = agreement.to_dict()
        if c.precision != "fp32":
            self.report(f"{c.label} {agreement.summary()}")
        elif not agreement.exact:
            raise WeightsError(_not_exact(c, agreement))
        if self.fresh and self.export is not None:
            checked = {check_key(c.runtime, c.precision): agreement}
            self._publish(sample, reference, on, checked)

    def _reference(self, sample: np.ndarray) -> np.ndarray:
        """Eager fp32 logits of the check's images. Behind an exported runtime, on one torch thread: the
        run's ``threads`` are sized for the runtime, and torch's threads spin-wait for each other when
        other work holds a core (8 Lite0 images on a loaded 2-core machine: 0.4 s on one thread, 2.5 s
        on two)."""
        eager = TorchClassifier(self.classifier.bundle, "fp32")
        if self.classifier.runtime == "torch":
            return eager.logits(sample)
        with torch_threads(1):
            return eager.logits(sample)

    def _publish(self, sample: np.ndarray, reference: np.ndarray, on: str, checked: dict[str, Agreement]) -> None:
        """Check every runtime file of the new export at fp32, then make it the bundle's export."""
        export, bundle = self.export, self.classifier.bundle
        for runtime in ("onnxruntime", "openvino"):
            key = check_key(runtime, "fp32")
            if KIND[(runtime, "fp32")] not in export.files or not installed(runtime):
                continue
            if key not in checked:
                with contextlib.closing(runtime_classifier(bundle, export, runtime, "fp32", None)) as fp32:
                    checked[key] = measure(reference, fp32.logits(sample), bundle.temperature, on)
                if not checked[key].exact:
                    raise WeightsError(_not_exact(fp32, checked[key]))
            export.checks[key] = checked[key].to_dict()
        try:
            where = publish(export, self.home)
        except Exception as exc:  # noqa: BLE001 - the run goes on; only the cache is lost
            self.report(f"note: could not save the checked export ({type(exc).__name__}: {exc}); "
                        "the next run exports the model again")
            return
        if self.home.folder is not None or self.home.run_id is not None:
            self.report(f"exported the model for {', '.join(sorted(export.files))}, checked against eager PyTorch "
                        f"on {on}; saved to {where} for the next runs")


def _not_exact(classifier: Classifier, agreement: Agreement) -> str:
    return (f"{classifier.label} does not reproduce eager PyTorch ({agreement.summary()}; fp32 runtimes must agree "
            f"within 1e-4 in every probability); no rows were written. Use runtime=torch, and delete the "
            f"model's export to make it again")
