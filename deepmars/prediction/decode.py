"""Worker-side work for one chunk of paths: hash, reuse check, decode, name metadata.

Everything per image up to the uint8 array runs here, in worker processes: hashing, decoding,
resizing, name metadata. A chunk comes back as one small record per path; the decoded images are
written by the worker straight into a slot of memory shared with the main process (an anonymous
shared mapping made before the workers fork), which the main process reads in place.

Before, the worker stacked a chunk's images into a new array and pickled it to the main process,
which unpickled it into another new array: on a loaded 2-core machine the stack alone took 0.58 ms
per image (12.5 MB of fresh pages per chunk of 64, faulted in one by one), the pickling round
0.19 ms, against 0.8 ms for hashing, decoding and resizing; slots are touched once and reused.
Without fork (or for a chunk larger than a slot) chunks travel pickled, as before. (Sending the
normalised float tensor instead would cost 4x the bytes.)

``DecodePool`` keeps a bounded number of chunks in flight (``multiprocessing.Pool.imap`` would
read ahead without limit and hold decoded images in memory while inference lags behind), and
returns them in submission order, so the pipeline is deterministic and memory is flat: one slot per
chunk in flight, plus one for the chunk the caller holds (batch 64 at 256 px, 1 worker: 3 x 12.6 MB).
"""

from __future__ import annotations

import enum
import json
import mmap
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
    """A chunk's items in input order; ``pixels`` holds the DECODED ones (uint8 NHWC), in order.

    From a ``DecodePool`` with slots, ``pixels`` is a view of shared memory, valid until the chunk
    after the next one is asked for; ``slot`` says which (None: ``pixels`` is the chunk's own array).
    """

    items: list[Item]
    pixels: np.ndarray | None = None
    decoded_index: list[int] = field(default_factory=list)
    slot: int | None = None


class PixelSlots:
    """``count`` buffers of ``capacity`` decoded images each, in one anonymous shared mapping.

    Made before the workers fork, it is the same memory in every process, and goes away with the
    last of them, however they end: nothing to clean up after a crash or a kill.
    """

    def __init__(self, count: int, capacity: int, image_shape: tuple[int, ...]):
        self.count, self.capacity = count, capacity
        shape = (count, capacity, *image_shape)
        self._map = mmap.mmap(-1, max(1, int(np.prod(shape))))
        self.array = np.frombuffer(self._map, dtype=np.uint8, count=int(np.prod(shape))).reshape(shape)

    def fits(self, paths: list[str]) -> bool:
        return len(paths) <= self.capacity


_settings: DecodeSettings | None = None
_slots: PixelSlots | None = None
# Keyed by process id too: a forked worker must never use (or close) a connection its parent
# opened, which it inherits when the parent decoded in-process before (num_workers=0).
_readers: dict[tuple[int, str], sqlite3.Connection] = {}


def init_worker(settings: DecodeSettings, parent_pid: int, slots: PixelSlots | None = None) -> None:
    """Process-pool initializer: the settings (and the shared slots, inherited by fork) stay in the
    worker for every chunk it gets."""
    global _settings, _slots
    _settings, _slots = settings, slots
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


def process_chunk(paths: list[str], slot: int | None = None) -> Chunk:
    """Worker entry: all paths of one chunk, decoded images written into shared ``slot`` (None: stacked
    into an array that travels with the chunk); the chunk itself comes back without them."""
    if slot is None:
        return process_paths(paths, _settings)
    chunk = process_paths(paths, _settings, _slots.array[slot])
    chunk.pixels, chunk.slot = None, slot
    return chunk


def process_paths(paths: list[str], settings: DecodeSettings, out: np.ndarray | None = None) -> Chunk:
    """The chunk of ``paths``; its decoded images go into ``out``'s first rows when given (``pixels``
    is then a view of them), else into a new stacked array."""
    chunk = Chunk(items=[])
    arrays = []
    for path in paths:
        item, pixels = process_path(path, settings)
        if pixels is not None:
            chunk.decoded_index.append(len(chunk.items))
            if out is not None:
                out[len(arrays)] = pixels
            arrays.append(pixels if out is None else None)
        chunk.items.append(item)
    if arrays:
        chunk.pixels = out[:len(arrays)] if out is not None else np.stack(arrays)
    return chunk


class DecodePool:
    """Chunks decoded by ``num_workers`` processes (0: in this process), in order, bounded.

    ``chunk_size``: the most paths a chunk will have (predict's batch size); with it, decoded images
    come back through shared slots of that many images (see the module docstring).
    """

    def __init__(self, settings: DecodeSettings, num_workers: int, max_in_flight: int | None = None,
                 chunk_size: int | None = None):
        self.settings = settings
        self.max_in_flight = max_in_flight or max(2, 2 * num_workers)
        self._executor: ProcessPoolExecutor | None = None
        self.slots: PixelSlots | None = None
        if num_workers > 0:
            # fork: workers start in milliseconds and inherit imported modules; they never use
            # torch's thread pools, so forking a process that has loaded torch is safe here.
            # ProcessPoolExecutor, not Pool: a worker killed by a decoder crash raises
            # BrokenProcessPool instead of leaving the run waiting forever.
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            if method == "fork" and chunk_size:
                # A slot per chunk in flight and one for the chunk the caller holds: slots are taken in
                # turn, so a chunk's slot is written again only once the caller asks for the chunk
                # after next.
                pre = settings.preprocess
                self.slots = PixelSlots(self.max_in_flight + 1, chunk_size, (pre.resize, pre.resize, pre.channels))
            self._executor = ProcessPoolExecutor(num_workers, mp_context=mp.get_context(method),
                                                 initializer=init_worker,
                                                 initargs=(settings, os.getpid(), self.slots))

    def map(self, chunks: Iterable[list[str]]) -> Iterator[Chunk]:
        """Decode ``chunks`` lazily: at most ``max_in_flight`` are submitted and not yet consumed."""
        if self._executor is None:
            for paths in chunks:
                yield process_paths(paths, self.settings)
            return
        pending: deque[tuple[list[str], Future]] = deque()
        for n, paths in enumerate(chunks):
            slot = n % self.slots.count if self.slots is not None and self.slots.fits(paths) else None
            pending.append((paths, self._executor.submit(process_chunk, paths, slot)))
            if len(pending) >= self.max_in_flight:
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    def _collect(self, paths: list[str], future: Future) -> Chunk:
        chunk = _result(paths, future)
        if chunk.slot is not None and chunk.decoded_index:
            chunk.pixels = self.slots.array[chunk.slot][:len(chunk.decoded_index)]
        return chunk

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
