"""``landmarks.py classify``: images -> landmarks -> crops -> a trained model -> catalog rows and overlays.

For each source image, in the main process and in input order (detection already uses every core
through numba, and numba's thread pool must not be driven from several Python threads):

1. skip it when this model already classified this content with these detector settings (the file
   unchanged since: without reading it; else by content hash); ``force=true`` redoes it;
2. detect landmarks and cut crops (``pipeline.process_image``), classify the crops in batches with
   the bundle's own preprocessing and calibration (a ``Classifier``: eager PyTorch or an exported
   runtime, ``runtime`` x ``precision``);
3. write the crops (``crops_dir``, optional) and the overlay PNG, then the image's catalog rows and
   per-class counts at ``count_confidence`` in one transaction (``store.LandmarkStore``).

Files come before the transaction, so a committed image always has its overlay; a process killed
in between re-does that image on the next run and writes the same files again. A bad file becomes
an error row in the catalog's ``errors`` table and the run goes on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from deepmars.catalog import Catalog, ErrorRow, LandmarkImageRow, LandmarkRow, utc_now
from deepmars.catalog.landmarks import LandmarkStore, StoredImage, count_by_class, count_rows
from deepmars.catalog.paths import to_catalog_path
from deepmars.cli import EXIT_OK, EXIT_SOME_FAILED
from deepmars.errors import ImageError
from deepmars.inference.agreement import calibrated
from deepmars.inference.classifier import Classifier
from deepmars.inference.failures import Failures
from deepmars.inference.files import FileIdentity, hash_file
from deepmars.inference.listing import UnreadableFolders
from deepmars.inference.opening import open_classifier
from deepmars.inference.ranking import rank
from deepmars.landmarks.config import LandmarkSettings
from deepmars.landmarks.options import ClassifyOptions
from deepmars.landmarks.outputs import IMAGE_DIR, update_labels_template, write_labeling_guide
from deepmars.landmarks.overlay import write_overlay
from deepmars.landmarks.pipeline import ImageLandmarks, process_image, source_name
from deepmars.models.bundle import ModelBundle

BELOW_COLOUR = (255, 255, 255)  # boxes under count_confidence: white, no class colour, shows on grey terrain
_CROPS_TRACE = """\
The catalog's landmarks table traces every crop (column crop_file) to its box: x, y, w, h in the
working image (the frame the crops are cut from), src_* in source pixels, with the model's class
and calibrated confidence; landmark_images holds each source image's path and sizes."""


@dataclass
class ClassifySummary:
    """What one classify run did: the end-of-run report and the exit code."""

    catalog: Path
    model_id: str
    count_confidence: float
    overlay_dir: Path | None
    images: int = 0
    inference: str = ""  # runtime and precision, e.g. "openvino fp32"
    classified: int = 0
    skipped: int = 0  # already classified by this model with these settings
    landmarks: int = 0  # in the classified and skipped images
    counted: Counter = field(default_factory=Counter)  # class -> landmarks at >= count_confidence
    images_with: Counter = field(default_factory=Counter)  # class -> images with at least one of them
    seconds: float = 0.0
    failures: Failures = field(default_factory=Failures)
    unreadable: UnreadableFolders = field(default_factory=UnreadableFolders)  # as predict's: no error rows

    @property
    def failed(self) -> int:
        return self.failures.count

    @property
    def exit_code(self) -> int:
        """3 when an image failed or a folder could not be read: part of the input is not classified."""
        return EXIT_SOME_FAILED if self.failed or self.unreadable else EXIT_OK

    def add_image(self, counts: dict[str, int], landmarks: int) -> None:
        self.landmarks += landmarks
        for name, n in counts.items():
            self.counted[name] += n
            self.images_with[name] += int(n > 0)


def detector_record(settings: LandmarkSettings) -> str:
    """The settings that decide landmarks and crops, as stored with each image: a change redoes it."""
    return json.dumps({"read": asdict(settings.read), "detect": asdict(settings.detect),
                       "crops": asdict(settings.crops)}, sort_keys=True)


def model_tag(model_id: str) -> str:
    """A folder name for one model's overlays: run-<run id>, file-<stem>-<digest>, or a hash; a reduced
    precision's rows (model id ``<id>+openvino-bf16``) get the variant appended."""
    variant = re.fullmatch(r"(.+)\+((?:torch|onnxruntime|openvino)-[a-z0-9-]+)", model_id)
    if variant:
        return f"{model_tag(variant[1])}-{variant[2]}"
    if model_id.startswith("runs:/"):
        return "run-" + model_id[len("runs:/"):].split("/")[0]
    match = re.fullmatch(r"file:(.*)#([0-9a-f]+)", model_id)
    if match:
        return f"file-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(match[1]).stem)}-{match[2]}"
    return "model-" + hashlib.sha256(model_id.encode()).hexdigest()[:12]


def overlay_dir(catalog: Path, model_id: str) -> Path:
    """``<catalog stem>_overlays/<model tag>/`` next to the catalog."""
    return catalog.parent / f"{catalog.stem}_overlays" / model_tag(model_id)


def below_label(threshold: float) -> str:
    return f"below {threshold:g}"


def crop_input(jpeg: bytes, bundle: ModelBundle) -> np.ndarray:
    """A crop as the model's training read it: the JPEG decoded, converted to its mode, resized."""
    with Image.open(io.BytesIO(jpeg)) as img:
        img.load()
        return bundle.preprocess.from_pil(img)


def posteriors(jpegs: Sequence[bytes], model: Classifier, batch_size: int, source: str) -> np.ndarray:
    """Calibrated class probabilities (N, classes) of one source image's crops, ``batch_size`` crops at
    a time; a model with a source prior re-estimates this image's class mix from all of them."""
    out = [np.zeros((0, len(model.class_names)), dtype=np.float32)]
    for start in range(0, len(jpegs), batch_size):
        arrays = np.stack([crop_input(data, model.bundle) for data in jpegs[start:start + batch_size]])
        out.append(model.logits(arrays))
    logits = model.bundle.source_logits(np.concatenate(out), [source] * len(jpegs))
    return calibrated(logits, model.bundle.temperature)


class ClassifyRun:
    """One run's state: catalog, model, settings, the images seen so far."""

    def __init__(self, catalog: Catalog, model: Classifier, settings: LandmarkSettings, opts: ClassifyOptions,
                 summary: ClassifySummary):
        self.catalog, self.model, self.settings, self.opts, self.summary = catalog, model, settings, opts, summary
        self.store = LandmarkStore(catalog, model.model_id)
        self.detector = detector_record(settings)
        self.sources: dict[str, str] = {}  # source name -> path, this run
        self.done: set[str] = set()  # content hashes classified in this run (force never does one twice)

    # ------------------------------------------------------------------ one image
    def image(self, path: str) -> None:
        """Skip, classify or record the failure of one input file; never raises for a bad file."""
        path = os.path.abspath(path)
        try:
            if self._skip_unread(path):
                return
            file = hash_file(path)
        except OSError as exc:
            self._fail(path, None, f"cannot read file ({exc.strerror or exc})")
            return
        stored = self._done_content(file)
        if stored is not None:
            self.store.clear_error(path)  # e.g. a broken file replaced by a copy of one already done
            self._skip(stored)
            return
        source = source_name(path)
        reason = self._name_clash(file, source)
        if reason:
            self._fail(path, file, reason)
            return
        self._classify(file, source)

    def _skip_unread(self, path: str) -> bool:
        if self.opts.force:
            return False
        st = os.stat(path)
        stored = self.store.unchanged(path, st.st_size, st.st_mtime_ns, self.detector)
        if stored is not None:
            self._skip(stored)
        return stored is not None

    def _done_content(self, file: FileIdentity) -> StoredImage | None:
        """This content as stored, when it needs no new run: done in this run, or with these settings."""
        stored = self.store.by_content(file.sha256)
        if stored is None:
            return None
        redo = self.opts.force or stored.detector != self.detector
        return stored if file.sha256 in self.done or not redo else None

    def _skip(self, stored: StoredImage) -> None:
        """Already classified: count it in this run's report, adding counts at this run's threshold if missing."""
        self.summary.skipped += 1
        counts = self.store.add_counts(stored, self.model.class_names, self.opts.count_confidence)
        self.summary.add_image(counts, stored.landmarks)

    def _name_clash(self, file: FileIdentity, source: str) -> str | None:
        """Why ``file`` may not take its source name (crop, overlay and count rows are named by it)."""
        if source in self.sources:
            return (f"source name {source!r} already used by {self.sources[source]} in this run: landmark rows, "
                    "crops and overlays would collide; rename one of the files")
        owner = self.store.by_source(source)
        other_file = (owner is not None and owner.sha256 != file.sha256
                      and owner.path != to_catalog_path(file.path))  # as stored
        if other_file and not self.opts.force:
            return (f"source name {source!r} is already classified by this model from {owner.path} (other "
                    "content); force=true replaces that image with this file, or use another catalog")
        return None

    def _classify(self, file: FileIdentity, source: str) -> None:
        self.sources[source] = file.path
        try:
            result = process_image(file.path, self.settings, source)
        except ImageError as exc:
            self._fail(file.path, file, exc.reason)
            return
        except Exception as exc:  # noqa: BLE001 - a decoder bug on one product must not stop the archive
            self._fail(file.path, file, f"reader or detector error ({type(exc).__name__}: {exc})")
            return
        probs = posteriors(result.jpegs, self.model, self.opts.batch_size, source)
        now = utc_now()
        rows = self._landmark_rows(result, file, probs, now)
        counts = count_by_class([(r.predicted_class, r.confidence) for r in rows], self.model.class_names,
                                self.opts.count_confidence)
        overlay = self._write_files(result, rows)
        self.store.write_image(self._image_row(result, file, overlay, now), rows,
                               count_rows(self.model.model_id, file.sha256, source, self.opts.count_confidence,
                                          counts))
        self.done.add(file.sha256)
        self.summary.classified += 1
        self.summary.add_image(counts, len(rows))

    def _fail(self, path: str, file: FileIdentity | None, reason: str) -> None:
        self.store.write_error(ErrorRow(self.model.model_id, path, file and file.sha256, file and file.size,
                                        file and file.mtime_ns, reason, utc_now()))
        self.summary.failures.add(path, reason)

    # --------------------------------------------------------------------- rows
    def _landmark_rows(self, result: ImageLandmarks, file: FileIdentity, probs: np.ndarray,
                       now: str) -> list[LandmarkRow]:
        rows = []
        for lm, p in zip(result.landmarks, probs, strict=True):
            ranked = rank(p, self.model.class_names, self.opts.top_k)
            rows.append(LandmarkRow(
                self.model.model_id, file.sha256, lm.index, result.source, lm.name if self.opts.crops_dir else None,
                lm.x, lm.y, lm.w, lm.h, lm.src_x, lm.src_y, lm.src_w, lm.src_h, lm.area, round(lm.salience, 4),
                ranked.predicted_class, ranked.confidence, ranked.top_k,
                int(ranked.confidence < self.opts.min_confidence), now))
        return rows

    def _image_row(self, result: ImageLandmarks, file: FileIdentity, overlay: str | None,
                   now: str) -> LandmarkImageRow:
        height, width = result.working.pixels.shape
        return LandmarkImageRow(
            self.model.model_id, file.sha256, result.source, file.path, file.size, file.mtime_ns,
            result.working.source_width, result.working.source_height, width, height, len(result.landmarks),
            "; ".join(result.notes), self.detector, overlay, now)

    # -------------------------------------------------------------------- files
    def _write_files(self, result: ImageLandmarks, rows: list[LandmarkRow]) -> str | None:
        """Crops (if asked) and the overlay; returns the overlay's path relative to the catalog folder."""
        if self.opts.crops_dir is not None:
            folder = self.opts.crops_dir / IMAGE_DIR
            folder.mkdir(parents=True, exist_ok=True)
            for lm, data in zip(result.landmarks, result.jpegs, strict=True):
                (folder / lm.name).write_bytes(data)
        if self.summary.overlay_dir is None:
            return None
        below = below_label(self.opts.count_confidence)
        names = [r.predicted_class if r.confidence >= self.opts.count_confidence else below for r in rows]
        path = write_overlay(result.working, result.landmarks, self.summary.overlay_dir / f"{result.source}.png",
                             self.settings.output.overlay_max_side, classes=names,
                             class_order=self.model.class_names, fixed_colours={below: BELOW_COLOUR})
        return path.relative_to(self.catalog.path.parent).as_posix()


# ------------------------------------------------------------------------------ the run
def run_classify(paths: Sequence[Path], settings: LandmarkSettings, opts: ClassifyOptions, bundle: ModelBundle,
                 out: TextIO | None = None, progress: bool = True,
                 unreadable: UnreadableFolders | None = None) -> ClassifySummary:
    """Classify the landmarks of every new or changed image of ``paths`` into ``opts.catalog``.

    ``unreadable``: the folders ``find_images`` could not read, reported with the run.
    """
    out = out or sys.stdout
    with open_classifier(bundle, opts.runtime, opts.precision, opts.threads, opts.tracking_uri,
                         report=lambda line: print(line, file=out), device=torch.device(opts.device)) as model:
        summary = _run(paths, settings, opts, model, progress, unreadable or UnreadableFolders())
    print_summary(summary, out)
    return summary


def _run(paths: Sequence[Path], settings: LandmarkSettings, opts: ClassifyOptions, model: Classifier,
         progress: bool, unreadable: UnreadableFolders) -> ClassifySummary:
    """Log the run, classify every image, mark the run finished (an interrupted run stays open)."""
    started = time.perf_counter()
    overlays = overlay_dir(opts.catalog, model.model_id) if settings.output.overlay else None
    summary = ClassifySummary(opts.catalog, model.model_id, opts.count_confidence, overlays, images=len(paths),
                              unreadable=unreadable, inference=model.label)
    record = {**opts.as_record(), "settings": json.loads(detector_record(settings)), "inference": model.record()}
    with Catalog.open(opts.catalog) as catalog:
        catalog.register_model(model.info())
        spec = opts.input if isinstance(opts.input, str) else json.dumps(list(opts.input))
        run_id = catalog.start_run(model.model_id, spec, None, record, command="landmarks")
        run = ClassifyRun(catalog, model, settings, opts, summary)
        bar = tqdm(paths, desc="classify", unit="image", disable=not progress, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 30)
        try:
            for path in bar:
                run.image(str(path))
                bar.set_postfix(landmarks=summary.landmarks, failed=summary.failed, refresh=False)
        finally:
            if opts.crops_dir is not None:  # also after Ctrl-C: crops written so far get their lines
                _write_labeling_files(opts.crops_dir, settings.output.placeholder_label)
        summary.seconds = time.perf_counter() - started
        catalog.finish_run(run_id, summary.classified, 0, summary.skipped, summary.failed, summary.exit_code)
    return summary


def _write_labeling_files(crops_dir: Path, placeholder: int) -> None:
    (crops_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    write_labeling_guide(crops_dir, placeholder, trace=_CROPS_TRACE)
    update_labels_template(crops_dir, placeholder)


def print_summary(s: ClassifySummary, out: TextIO) -> None:
    """Counts, the per-class table at count_confidence, where the overlays are, the first failures."""
    print(f"catalog {s.catalog}  model {s.model_id}  ({s.inference})", file=out)
    print(f"{s.images} images: classified {s.classified}, skipped as already done {s.skipped}, failed {s.failed}"
          f"  ({s.seconds:.1f} s)", file=out)
    print(f"{s.landmarks} landmarks in the {s.classified + s.skipped} images classified or skipped; "
          f"per class at confidence >= {s.count_confidence:g}:", file=out)
    width = max([12, *(len(name) for name in s.counted)])
    print(f"  {'class':<{width}}  {'landmarks':>9}  {'images':>6}", file=out)
    for name, n in sorted(s.counted.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {name:<{width}}  {n:>9}  {s.images_with[name]:>6}", file=out)
    if s.overlay_dir is not None:
        print(f"overlays: {s.overlay_dir}/", file=out)
    print(f"images with at least N of a class: python landmarks.py query class=<class> min_count=N "
          f"count_confidence={s.count_confidence:g} catalog={s.catalog}", file=out)
    s.failures.print(s.catalog, out)
    s.unreadable.print(out)
