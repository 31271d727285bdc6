"""The predict pipeline: discover -> skip done -> decode in workers -> infer -> write in batches.

The main process does only what must be serial: the catalog look-ups that skip finished files,
inference (a ``Classifier``: eager PyTorch or an exported runtime, ``opts.threads`` threads; in a
thread of its own, one batch ahead of the writes) and one transaction per batch. Decoding and
hashing run in worker processes ahead of it, a bounded number of chunks at a time, so memory does
not grow with the number of images. A model that adapts to source images has each source's rows
held until the listing is past it (``source_groups``).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from tqdm import tqdm

from deepmars.catalog import Catalog, ErrorRow, PredictionRow, utc_now
from deepmars.catalog.predictions import LOOKUP_BLOCK, PredictionStore
from deepmars.cli import EXIT_OK, EXIT_SOME_FAILED
from deepmars.data.metadata import check_metadata_spec
from deepmars.inference.classifier import Classifier
from deepmars.inference.failures import Failures
from deepmars.inference.listing import UnreadableFolders
from deepmars.inference.opening import open_classifier
from deepmars.inference.ranking import Ranked, rank
from deepmars.models.bundle import ModelBundle
from deepmars.prediction.decode import Chunk, DecodePool, DecodeSettings, Item, Status, process_path
from deepmars.prediction.inputs import Shard, count_inputs, iter_inputs
from deepmars.prediction.options import PredictOptions
from deepmars.prediction.source_groups import SourceGroups


@dataclass
class RunSummary:
    """What one predict run did, for the end-of-run report and the exit code."""

    catalog: Path
    model_id: str
    inference: str = ""  # runtime and precision, e.g. "openvino fp32"
    total: int = 0
    classified: int = 0  # inferred in this run
    reused: int = 0  # identical content seen before under another path: prediction copied
    skipped: int = 0  # unchanged since this model classified it
    seconds: float = 0.0
    per_class: Counter = field(default_factory=Counter)
    abstained: Counter = field(default_factory=Counter)
    confidence_sum: Counter = field(default_factory=Counter)
    failures: Failures = field(default_factory=Failures)
    # Not error rows: a folder is no image, and its row would never be cleared by a later success.
    unreadable: UnreadableFolders = field(default_factory=UnreadableFolders)

    @property
    def failed(self) -> int:
        return self.failures.count

    @property
    def exit_code(self) -> int:
        """3 when an image failed or a folder could not be read: part of the input is not classified."""
        return EXIT_SOME_FAILED if self.failed or self.unreadable else EXIT_OK

    def add_prediction(self, predicted_class: str, confidence: float, abstained: bool) -> None:
        self.per_class[predicted_class] += 1
        self.confidence_sum[predicted_class] += confidence
        self.abstained[predicted_class] += int(abstained)


# How a run's pending images become catalog rows: (catalog, options, classifier, summary, progress).
Classify = Callable[[Catalog, PredictOptions, Classifier, RunSummary, bool], None]


def run_predict(opts: PredictOptions, bundle: ModelBundle, out: TextIO | None = None,
                progress: bool = True, classify: Classify | None = None, runs_on: str | None = None) -> RunSummary:
    """Classify every new or changed image of ``opts.input`` into ``opts.catalog``.

    ``classify`` replaces this process's pipeline (decode workers + inference here) by another
    engine's (``prediction.ray_engine``), whose workers build the same classifier; the catalog, run
    record and summary stay the same. This process's classifier then stays on the CPU: it chooses
    the runtime for where the workers run (``runs_on``, e.g. "cuda"), finds or makes the export and
    checks it on the run's first images.
    """
    out = out or sys.stdout
    check_metadata_spec(bundle.dataset.get("metadata"))
    device = torch.device(opts.device) if classify is None else torch.device("cpu")
    with open_classifier(bundle, opts.runtime, opts.precision, opts.threads, opts.tracking_uri,
                         report=lambda line: print(line, file=out), device=device, runs_on=runs_on) as model:
        summary = _run(opts, model, progress, classify or classify_chunks)
    print_summary(summary, out)
    return summary


def _run(opts: PredictOptions, model: Classifier, progress: bool, classify: Classify) -> RunSummary:
    """Open the catalog, log the run, classify, and mark the run finished (a crash leaves it open)."""
    summary = RunSummary(catalog=opts.catalog, model_id=model.model_id, inference=model.label)
    started = time.perf_counter()
    with Catalog.open(opts.catalog) as catalog:
        catalog.register_model(model.info())
        shard = None if opts.shard is None else opts.shard.label
        record = {**opts.as_record(), "inference": model.record()}
        run_id = catalog.start_run(model.model_id, opts.input, shard, record)
        classify(catalog, opts, model, summary, progress)
        summary.seconds = time.perf_counter() - started
        catalog.finish_run(run_id, summary.classified, summary.reused, summary.skipped, summary.failed,
                           summary.exit_code)
    return summary


def progress_bar(total: int, progress: bool) -> tqdm:
    # In a log file (no terminal) a line every 30 s, not a carriage-return stream.
    return tqdm(total=total, unit="img", desc="predict", disable=not progress, smoothing=0.1,
                mininterval=0.5 if sys.stderr.isatty() else 30, dynamic_ncols=True)


def classify_chunks(catalog: Catalog, opts: PredictOptions, model: Classifier, summary: RunSummary,
                    progress: bool) -> None:
    """Pending paths -> chunks decoded in workers -> inference -> one transaction per chunk."""
    bundle = model.bundle
    groups = source_groups(bundle)
    summary.total = count_inputs(opts.input, shard_of(opts, groups), summary.unreadable)
    settings = DecodeSettings(preprocess=bundle.preprocess, metadata_spec=bundle.dataset.get("metadata"),
                              catalog_path=str(opts.catalog), model_id=model.model_id, reuse=not opts.force)
    bar = progress_bar(summary.total, progress)
    store = PredictionStore(catalog, model.model_id)
    with DecodePool(settings, opts.num_workers, chunk_size=opts.batch_size) as pool, bar, \
            ThreadPoolExecutor(1, thread_name_prefix="inference") as inference:
        todo = pending(store, iter_inputs(opts.input, shard_of(opts, groups), summary.unreadable), opts.force,
                       summary, bar)
        decoded = pool.map(chunks(todo, opts.batch_size))
        # In-process decoding keeps the strict order (decode, infer, write, then the next chunk), so
        # content repeated in a later chunk is always reused from the row just written; with workers,
        # chunks are decoded ahead anyway.
        pairs = overlapped(decoded, model, inference) if opts.num_workers > 0 else ((c, None) for c in decoded)
        for chunk, probs in pairs:
            predictions, errors = chunk_rows(chunk, model, store, settings, opts, summary, probs, groups)
            if groups is not None:  # chunks come in listing order: only the last item's source may go on
                predictions += released_rows(groups, groups.source_of(chunk.items[-1].path), model, opts, summary)
            store.write_batch(predictions, errors)
            bar.update(len(chunk.items))
        write_released(store, groups, model, opts, summary)


def source_groups(bundle: ModelBundle) -> SourceGroups | None:
    """Held rows per source image when the model adapts to sources (``prediction.source_groups``)."""
    return SourceGroups(bundle, bundle.dataset.get("metadata")) if bundle.adapts_to_sources else None


def shard_of(opts: PredictOptions, groups: SourceGroups | None) -> Shard | None:
    """This run's shard; with held source groups, a source image's crops all fall in one shard."""
    return opts.shard.grouped(groups.source_of) if opts.shard is not None and groups is not None else opts.shard


def released_rows(groups: SourceGroups, keep: str | None, model: Classifier, opts: PredictOptions,
                  summary: RunSummary) -> list[PredictionRow]:
    """Rows of every held source group except ``keep``'s, adapted together."""
    now = utc_now()
    return [_prediction_row(item, model.model_id, rank(p, model.class_names, opts.top_k), opts, now, summary)
            for item, p in groups.release(keep)]


def write_released(store: PredictionStore, groups: SourceGroups | None, model: Classifier, opts: PredictOptions,
                   summary: RunSummary, keep: str | None = None) -> None:
    """The held groups but ``keep``'s (None: all, at the end of the listing) in one transaction."""
    rows = [] if groups is None else released_rows(groups, keep, model, opts, summary)
    if rows:
        store.write_batch(rows, [])


def overlapped(decoded: Iterator[Chunk], model: Classifier,
               inference: ThreadPoolExecutor) -> Iterator[tuple[Chunk, np.ndarray | None]]:
    """Each chunk with its probabilities, the next chunk's inference running while the caller writes
    this one's rows (and while the next chunk after it is fetched: catalog look-ups, submission to the
    decode workers).

    Runtimes leave the GIL while they compute, so the serial work of the main process no longer
    leaves the cores idle between batches. A chunk's pixels are read only by its own inference, which
    has finished before the chunk after next is asked for (the decode pool reuses its slot then).
    """
    def infer(chunk: Chunk | None) -> Future | None:
        return None if chunk is None or chunk.pixels is None else inference.submit(model.probabilities, chunk.pixels)

    chunk = next(decoded, None)
    running = infer(chunk)
    while chunk is not None:
        following = next(decoded, None)
        probs = None if running is None else running.result()
        running = infer(following)
        yield chunk, probs
        chunk = following


def pending(store: PredictionStore, paths: Iterable[str], force: bool, summary: RunSummary,
             bar: tqdm) -> Iterator[str]:
    """Paths that need work: not in the catalog for this model with the same size and mtime.

    Unchanged files are skipped without being read, so re-running over a grown archive costs a
    directory listing plus one indexed look-up per file, not a re-hash of every byte.
    """
    it = iter(paths)
    while block := list(islice(it, LOOKUP_BLOCK)):
        if force:
            yield from block
            continue
        stats = []
        for path in block:
            try:
                st = os.stat(path)
                stats.append((path, st.st_size, st.st_mtime_ns))
            except OSError:
                pass  # the worker records why it cannot be read
        done = store.unchanged_paths(stats)
        summary.skipped += len(done)
        bar.update(len(done))
        yield from (p for p in block if p not in done)


def chunks(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(paths)
    while chunk := list(islice(it, size)):
        yield chunk


def chunk_rows(chunk: Chunk, model: Classifier, store: PredictionStore, settings: DecodeSettings,
               opts: PredictOptions, summary: RunSummary, probs: np.ndarray | None = None,
               groups: SourceGroups | None = None) -> tuple[list[PredictionRow], list[ErrorRow]]:
    """Catalog rows for one chunk: infer the decoded images (unless ``probs`` holds their calibrated
    probabilities already, in ``decoded_index`` order), copy known content, record failures.
    ``groups``: decoded images with a source image are held there instead (released by the caller)."""
    now = utc_now()
    predictions: list[PredictionRow] = []
    errors: list[ErrorRow] = []
    if probs is None and chunk.pixels is not None:
        probs = model.probabilities(chunk.pixels)
    if chunk.decoded_index:
        for i, row_probs in zip(chunk.decoded_index, probs, strict=True):
            if groups is not None and groups.hold(chunk.items[i], row_probs):
                continue
            ranked = rank(row_probs, model.class_names, opts.top_k)
            predictions.append(_prediction_row(chunk.items[i], model.model_id, ranked, opts, now, summary))
        summary.classified += len(chunk.decoded_index)
    for item in chunk.items:
        if item.status is Status.KNOWN:
            row = _reused_row(item, model, store, settings, opts, now, summary)
            (predictions if isinstance(row, PredictionRow) else errors).append(row)
        elif item.status is Status.FAILED:
            errors.append(_error_row(item, model.model_id, now, summary))
    return predictions, errors


def _prediction_row(item: Item, model_id: str, ranked: Ranked, opts: PredictOptions, now: str,
                    summary: RunSummary) -> PredictionRow:
    abstained = ranked.confidence < opts.min_confidence
    summary.add_prediction(ranked.predicted_class, ranked.confidence, abstained)
    return PredictionRow(model_id, item.path, item.sha256, item.size, item.mtime_ns, item.width, item.height,
                         item.sol, item.instrument, item.source_image, item.metadata, ranked.predicted_class,
                         ranked.confidence, ranked.top_k, int(abstained), now)


def _reused_row(item: Item, model: Classifier, store: PredictionStore, settings: DecodeSettings,
                opts: PredictOptions, now: str, summary: RunSummary) -> PredictionRow | ErrorRow:
    """Copy the prediction of identical content; its flag follows this run's min_confidence."""
    known = store.known(item.sha256)
    if known is None:
        # The earlier row went away between the worker's check and now: decode it here instead.
        fresh, pixels = process_path(item.path, replace(settings, reuse=False))
        if fresh.status is not Status.DECODED:
            return _error_row(fresh, model.model_id, now, summary)
        summary.classified += 1
        ranked = rank(model.probabilities(pixels[None])[0], model.class_names, opts.top_k)
        return _prediction_row(fresh, model.model_id, ranked, opts, now, summary)
    item.width, item.height = known.width, known.height
    summary.reused += 1
    ranked = Ranked(known.predicted_class, known.confidence, known.top_k)
    return _prediction_row(item, model.model_id, ranked, opts, now, summary)


def _error_row(item: Item, model_id: str, now: str, summary: RunSummary) -> ErrorRow:
    summary.failures.add(item.path, item.reason)
    return ErrorRow(model_id, item.path, item.sha256, item.size, item.mtime_ns, item.reason, now)


def print_summary(s: RunSummary, out: TextIO) -> None:
    """Counts, rate, per-class table and the first failures, as the run's last words."""
    done = s.classified + s.reused + s.failed
    rate = done / s.seconds if s.seconds > 0 else 0.0
    print(f"catalog {s.catalog}  model {s.model_id}  ({s.inference})", file=out)
    print(f"{s.total} images: classified {s.classified}, reused by content hash {s.reused}, "
          f"skipped as already done {s.skipped}, failed {s.failed}  "
          f"({s.seconds:.1f} s, {rate:.1f} img/s)", file=out)
    if s.per_class:
        width = max(12, *(len(c) for c in s.per_class))
        print(f"{'class':<{width}}  {'images':>7}  {'abstained':>9}  {'mean conf':>9}", file=out)
        for name, n in sorted(s.per_class.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{name:<{width}}  {n:>7}  {s.abstained[name]:>9}  {s.confidence_sum[name] / n:>9.3f}",
                  file=out)
    s.failures.print(s.catalog, out)
    s.unreadable.print(out)
