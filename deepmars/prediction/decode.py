"""Worker-side work for one chunk of paths: hash, reuse check, decode, name metadata.

Everything per image up to the uint8 array runs here, in worker processes: hashing, decoding,
resizing, name metadata. A chunk comes back as one stacked uint8 array plus one small record per
path: one pickle per chunk instead of one per image. (Sending the normalised float tensor instead
would save the main process ~1 ms/img, but a CPU tensor returned through torch's shared-memory
pickling leaks its size in the worker on every chunk, measured with torch 2.14; float32 numpy
would cost 3x the bytes in flight for a third of that saving.)

``DecodePool`` keeps a bounded number of chunks in flight (``multiprocessing.Pool.imap`` would
read ahead without limit and hold decoded images in memory while inference lags behind), and
returns them in submission order, so the pipeline is deterministic and memory is flat.
"""

from __future__ import annotations

import enum
import json
import multiprocessing as mp
import os
import signal
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np

from deepmars.catalog import open_reader
from deepmars.data.images import load_image
from deepmars.data.metadata import parse_metadata
from deepmars.data.transforms import Preprocess
from deepmars.errors import DataError, ImageError
from deepmars.inference.files import hash_file
from deepmars.prediction.worker_exit import exit_with_parent

# Name fields with their own catalog column; any other field goes to the JSON metadata column.
METADATA_COLUMNS = ("sol", "instrument", "source_image")



class Status(enum.Enum):
    """What the worker did with a path."""

    DECODED = "decoded"  # pixels are in the chunk, to be classified
    KNOWN = "known"  # this model already classified this content under another path
    FAILED = "failed"  # cannot be used: ``reason`` says why


@dataclass(frozen=True)
class DecodeSettings:
    """What every worker needs; sent once per worker, not once per chunk."""

    preprocess: Preprocess
    metadata_spec: Mapping | None
    catalog_path: str
    model_id: str
    reuse: bool  # False with force=true: classify every file again


@dataclass
class Item:
    """One input path after the worker: its identity, name metadata, and what happened."""

    path: str
    status: Status
    sha256: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    width: int = 0
    height: int = 0
    sol: int | None = None
    instrument: str | None = None
    source_image: str | None = None
    metadata: str = "{}"
    reason: str = ""


@dataclass
class Chunk:
    """A chunk's items in input order; ``pixels`` holds the DECODED ones (uint8 NHWC), in order."""

    items: list[Item]
    pixels: np.ndarray | None = None
    decoded_index: list[int] = field(default_factory=list)


_settings: DecodeSettings | None = None
# Keyed by process id too: a forked worker must never use (or close) a connection its parent
# opened, which it inherits when the parent decoded in-process before (num_workers=0).
_readers: dict[tuple[int, str], sqlite3.Connection] = {}


def init_worker(settings: DecodeSettings, parent_pid: int) -> None:
    """Process-pool initializer: the settings stay in the worker for every chunk it gets."""
    global _settings
    _settings = settings
    # Ctrl-C reaches the whole process group: the main process stops the run, workers just exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM ends a worker at once, without a traceback: a forked worker would otherwise inherit the
    # main process's handler (raise Terminated). Not ignored: the pool ends workers with it when one
    # has crashed, and waits for them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    exit_with_parent(parent_pid)  # a main process killed with -9 must not leave its workers behind


def _known(sha256: str, settings: DecodeSettings) -> bool:
    """Has this model already classified this content (under any path)?"""
    key = (os.getpid(), settings.catalog_path)
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = open_reader(settings.catalog_path)
    row = reader.execute("SELECT 1 FROM predictions WHERE model_id=? AND sha256=? LIMIT 1",
                         (settings.model_id, sha256)).fetchone()
    return row is not None


def _name_metadata(item: Item, spec: Mapping | None) -> None:
    fields = parse_metadata(item.path, spec)
    item.sol = fields.pop("sol", None)
    item.instrument = fields.pop("instrument", None)
    item.source_image = fields.pop("source_image", None)
    item.metadata = json.dumps(fields, sort_keys=True)


def process_path(path: str, settings: DecodeSettings) -> tuple[Item, np.ndarray | None]:
    """Hash ``path``; decode it unless its content is already classified; never raises for a bad file."""
    item = Item(path=path, status=Status.FAILED)
    try:
        _, item.size, item.mtime_ns, item.sha256 = hash_file(path)
    except OSError as exc:
        item.reason = f"cannot read file ({exc.strerror or exc})"
        return item, None
    _name_metadata(item, settings.metadata_spec)
    if settings.reuse and _known(item.sha256, settings):
        item.status = Status.KNOWN
        return item, None
    try:
        img = load_image(path, settings.preprocess.mode)
    except ImageError as exc:
        item.reason = exc.reason
        return item, None
    except Exception as exc:  # noqa: BLE001 - a decoder bug on one file must not stop 3.7 M others
        item.reason = f"decoder error ({type(exc).__name__}: {exc})"
        return item, None
    item.width, item.height = img.size
    item.status = Status.DECODED
    return item, settings.preprocess.from_pil(img)


def process_chunk(paths: list[str]) -> Chunk:
    """Worker entry: all paths of one chunk, decoded images stacked into one array."""
    return process_paths(paths, _settings)


def process_paths(paths: list[str], settings: DecodeSettings) -> Chunk:
    chunk = Chunk(items=[])
    arrays = []
    for path in paths:
        item, pixels = process_path(path, settings)
        if pixels is not None:
            chunk.decoded_index.append(len(chunk.items))
            arrays.append(pixels)
        chunk.items.append(item)
    if arrays:
        chunk.pixels = np.stack(arrays)
    return chunk


class DecodePool:
    """Chunks decoded by ``num_workers`` processes (0: in this process), in order, bounded."""

    def __init__(self, settings: DecodeSettings, num_workers: int, max_in_flight: int | None = None):
        self.settings = settings
        self.max_in_flight = max_in_flight or max(2, 2 * num_workers)
        self._executor: ProcessPoolExecutor | None = None
        if num_workers > 0:
            # fork: workers start in milliseconds and inherit imported modules; they never use
            # torch's thread pools, so forking a process that has loaded torch is safe here.
            # ProcessPoolExecutor, not Pool: a worker killed by a decoder crash raises
            # BrokenProcessPool instead of leaving the run waiting forever.
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self._executor = ProcessPoolExecutor(num_workers, mp_context=mp.get_context(method),
                                                 initializer=init_worker, initargs=(settings, os.getpid()))

    def map(self, chunks: Iterable[list[str]]) -> Iterator[Chunk]:
        """Decode ``chunks`` lazily: at most ``max_in_flight`` are submitted and not yet consumed."""
        if self._executor is None:
            for paths in chunks:
                yield process_paths(paths, self.settings)
            return
        pending: deque[tuple[list[str], Future]] = deque()
        for paths in chunks:
            pending.append((paths, self._executor.submit(process_chunk, paths)))
            if len(pending) >= self.max_in_flight:
                yield _result(*pending.popleft())
        while pending:
            yield _result(*pending.popleft())

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _result(paths: list[str], future: Future) -> Chunk:
    try:
        return future.result()
    except BrokenProcessPool:
        raise DataError(f"a decode worker died (a crash inside an image decoder) on one of "
                        f"{len(paths)} files starting at {paths[0]}; completed batches are saved. "
                        "Re-run with num_workers=0 to see which file, then move it aside") from None
