"""Decode workers hand decoded images back through shared slots: the same chunks as decoding in-process;
inference of the next chunk overlaps the writing of the one before."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from deepmars.data.transforms import Preprocess
from deepmars.prediction.decode import DecodePool, DecodeSettings, process_paths
from deepmars.prediction.runner import overlapped


def settings(tmp_path: Path) -> DecodeSettings:
    return DecodeSettings(Preprocess(img_size=24, resize=32), None, str(tmp_path / "none.sqlite"), "m", reuse=False)


def chunks_of(paths: list[str], size: int) -> list[list[str]]:
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def test_workers_give_the_in_process_chunks_through_shared_slots(tmp_path, write_images, write_files):
    images = write_images(tmp_path / "img", 20)
    write_files(tmp_path / "bad", {"0100MLbad.jpg": b"not a jpeg", "0100MLempty.jpg": b""})
    paths = sorted(str(p) for p in [*images, *(tmp_path / "bad").iterdir()])
    s = settings(tmp_path)
    expected = [process_paths(c, s) for c in chunks_of(paths, 5)]
    with DecodePool(s, 2, chunk_size=5) as pool:
        got = list(pool.map(chunks_of(paths, 5)))
        assert pool.slots is not None and pool.slots.count == pool.max_in_flight + 1
    assert [c.slot for c in got] == [i % pool.slots.count for i in range(len(got))]
    for want, have in zip(expected, got, strict=True):
        assert [(i.path, i.status, i.sha256, i.reason) for i in have.items] == \
               [(i.path, i.status, i.sha256, i.reason) for i in want.items]
        assert have.decoded_index == want.decoded_index
        if want.pixels is None:
            assert have.pixels is None
        else:
            np.testing.assert_array_equal(have.pixels, want.pixels)
    assert sum(len(c.decoded_index) for c in got) == 20


def test_a_chunks_pixels_stay_until_the_chunk_after_next_is_asked_for(tmp_path, write_images):
    paths = sorted(str(p) for p in write_images(tmp_path / "img", 24))
    s = settings(tmp_path)
    expected = [process_paths(c, s).pixels for c in chunks_of(paths, 2)]
    with DecodePool(s, 1, chunk_size=2) as pool:
        held = []
        for chunk in pool.map(chunks_of(paths, 2)):
            held.append(chunk.pixels)
            if len(held) >= 2:  # the chunk before this one is still intact
                np.testing.assert_array_equal(held[-2], expected[len(held) - 2])
            np.testing.assert_array_equal(held[-1], expected[len(held) - 1])


def test_a_chunk_larger_than_a_slot_travels_as_its_own_array(tmp_path, write_images):
    paths = sorted(str(p) for p in write_images(tmp_path / "img", 7))
    s = settings(tmp_path)
    with DecodePool(s, 1, chunk_size=3) as pool:
        small, large = list(pool.map([paths[:3], paths[3:]]))
    assert small.slot is not None and large.slot is None
    np.testing.assert_array_equal(large.pixels, process_paths(paths[3:], s).pixels)


class SignallingModel:
    """Stands in for a classifier: an image's 'probability' is its mean pixel; says when each batch starts."""

    def __init__(self, batches: int):
        self.started = [threading.Event() for _ in range(batches)]
        self.calls = 0

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        self.started[self.calls].set()
        self.calls += 1
        return pixels.reshape(len(pixels), -1).mean(1, keepdims=True)


def test_the_next_chunk_is_inferred_while_the_caller_writes_this_one(tmp_path, write_images, write_files):
    images = [str(p) for p in sorted(write_images(tmp_path / "img", 10))]
    write_files(tmp_path / "bad", {"0100MLbad.jpg": b"not a jpeg", "0100MLempty.jpg": b""})
    paths = images[:4] + sorted(str(p) for p in (tmp_path / "bad").iterdir()) + images[4:]  # a chunk without pixels
    s = settings(tmp_path)
    expected = [process_paths(c, s) for c in chunks_of(paths, 2)]
    model = SignallingModel(sum(c.pixels is not None for c in expected))
    batch = 0
    with DecodePool(s, 1, chunk_size=2) as pool, ThreadPoolExecutor(1) as inference:
        pairs = overlapped(pool.map(chunks_of(paths, 2)), model, inference)
        for n, (want, (chunk, probs)) in enumerate(zip(expected, pairs, strict=True)):
            assert [i.path for i in chunk.items] == [i.path for i in want.items]
            if want.pixels is None:
                assert probs is None
                continue
            # the probabilities are of this chunk's pixels, though its slot was shared while it waited
            np.testing.assert_allclose(probs[:, 0], want.pixels.reshape(len(want.pixels), -1).mean(1))
            batch += 1
            if n + 1 < len(expected) and expected[n + 1].pixels is not None:
                assert model.started[batch].wait(10)  # the next chunk is inferred while this one is "written"
    assert batch == model.calls == len(model.started)
