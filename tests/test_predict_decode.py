"""Decode workers hand decoded images back through shared slots: the same chunks as decoding in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepmars.data.transforms import Preprocess
from deepmars.prediction.decode import DecodePool, DecodeSettings, process_paths


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
