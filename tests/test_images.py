"""deepmars.data.images, .transforms and .cache: decoding any file safely, into the network's input.

Each kind of file is either converted exactly (mode and pixel values checked) or refused with an
ImageError whose reason says why; a refused image is listed and left out of a decoded batch.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_jpeg
from PIL import Image

from deepmars.data.cache import decode_samples
from deepmars.data.dataset import Sample
from deepmars.data.images import MAX_PIXELS, load_image
from deepmars.data.transforms import Preprocess
from deepmars.errors import ImageError


def save(tmp_path: Path, name: str, img: Image.Image, **kw) -> Path:
    path = tmp_path / name
    img.save(path, **kw)
    return path


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def refused(path: Path, *fragments: str) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(path)
    exc = info.value
    assert exc.path == path and exc.line is None and str(exc) == f"{path}: {exc.reason}"
    for fragment in fragments:
        assert fragment in exc.reason, exc.reason
    return exc


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` 8-bit gray, and no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def bmp_header_only(width: int, height: int) -> bytes:
    """A 24-bit BMP header (54 bytes) claiming ``width`` x ``height``, and no pixel data."""
    return (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0))


# --- decoded correctly --------------------------------------------------------------------------------

def test_rgb_jpeg(tmp_path):
    path = save(tmp_path, "a.JPG", Image.new("RGB", (16, 8), (200, 100, 50)), quality=100)
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (16, 8))
    assert np.abs(pixels(img).astype(int) - [200, 100, 50]).max() <= 2
    gray = load_image(path, "L")
    assert gray.mode == "L" and abs(int(pixels(gray)[0, 0]) - 124) <= 2  # ITU-R 601-2 luma


def test_gray_jpeg_becomes_three_equal_channels(tmp_path):
    path = write_jpeg(tmp_path / "g.jpg", size=8, mode="L", shade=77)
    img = load_image(path)
    arr = pixels(img)
    assert img.mode == "RGB" and arr.shape == (8, 8, 3)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all() and abs(int(arr[0, 0, 0]) - 77) <= 1
    assert load_image(path, "L").mode == "L"


def test_rgb_and_gray_png_exact(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert (pixels(load_image(save(tmp_path, "c.png", Image.fromarray(rgb)))) == rgb).all()
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    img = load_image(save(tmp_path, "g.png", Image.fromarray(gray)))
    assert (pixels(img) == gray[..., None].repeat(3, axis=2)).all()


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = save(tmp_path, "cmyk.jpg", Image.new("CMYK", (8, 8), (255, 0, 0, 0)), quality=100)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    img = load_image(path)
    assert img.mode == "RGB"
    assert np.abs(pixels(img).astype(int) - [0, 255, 255]).max() <= 2  # pure cyan


def test_16_bit_png_is_scaled_by_its_own_range(tmp_path):
    values = np.array([[1000, 2000], [17000, 66000 - 535]], dtype=np.uint16)
    path = save(tmp_path, "i16.png", Image.fromarray(values))
    with Image.open(path) as raw:
        assert raw.mode == "I;16"
    # (v - 1000) * 255 / 64465, rounded
    expected = np.array([[0, 4], [63, 255]], dtype=np.uint8)
    assert (pixels(load_image(path, "L")) == expected).all()
    assert (pixels(load_image(path)) == expected[..., None].repeat(3, axis=2)).all()
    flat = save(tmp_path, "flat16.png", Image.fromarray(np.full((2, 2), 5000, dtype=np.uint16)))
    assert (pixels(load_image(flat, "L")) == 0).all()


def test_palette_png(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.putpixel((1, 1), 1)
    img.putpixel((2, 3), 2)
    out = pixels(load_image(save(tmp_path, "p.png", img)))
    assert out.shape == (4, 4, 3)
    assert out[1, 1].tolist() == [255, 0, 0] and out[3, 2].tolist() == [0, 255, 0] and out[0, 0].tolist() == [0, 0, 0]


def test_palette_png_with_transparency_is_composited_on_black(tmp_path):
    img = Image.new("P", (2, 2), 1)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.putpixel((0, 0), 0)
    out = pixels(load_image(save(tmp_path, "pt.png", img, transparency=1)))
    assert (out == 0).all()  # the transparent colour becomes black, not (200, 100, 50)


def test_rgba_and_la_png_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 128)
    rgba[0, 1] = (10, 20, 30, 255)
    rgba[1, 0] = (255, 255, 255, 0)
    img = load_image(save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
    assert img.mode == "RGB"
    assert pixels(img).tolist() == [[[128, 0, 0], [10, 20, 30]], [[0, 0, 0], [0, 0, 0]]]
    la = load_image(save(tmp_path, "la.png", Image.new("LA", (2, 2), (200, 255))), "L")
    assert la.mode == "L" and (pixels(la) == 200).all()


def test_bilevel_png(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    assert pixels(load_image(save(tmp_path, "b.png", img))).tolist() == [[[0, 0, 0], [255, 255, 255]]]


# --- refused with a reason ----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    refused(tmp_path / "gone.jpg", "cannot read file", "No such file")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.JPG"
    path.write_bytes(b"")
    assert refused(path).reason == "empty file (0 bytes)"


def test_truncated_jpeg(tmp_path):
    whole = save(tmp_path, "whole.jpg", Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), quality=90).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) // 2])
    refused(path, "corrupt or truncated image data", "runcated")


def test_non_image_with_jpg_extension(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("calibrated/0003ML0000000110100031E01_DRCL.JPG 0\n")
    assert refused(path).reason == "not an image PIL can identify (wrong extension or corrupt header)"


@pytest.mark.parametrize("header", [png_header_only, bmp_header_only])
def test_gigantic_header_without_pixels_is_refused_before_decoding(tmp_path, header):
    path = tmp_path / "bomb.img"
    path.write_bytes(header(100_000, 100_000))
    assert path.stat().st_size < 100
    refused(path, "decompression-bomb guard", "10000000000 pixels")


def test_own_pixel_limit_below_pil_limit(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(9000, 9000))  # 81 Mpx: under PIL's warning level, over ours
    assert refused(path).reason == (
        f"image is 9000x9000 = 81,000,000 pixels, above the limit of {MAX_PIXELS:,} (decompression-bomb guard)")
    small = save(tmp_path, "s.png", Image.new("L", (10, 10)))
    with pytest.raises(ImageError, match="image is 10x10 = 100 pixels, above the limit of 99"):
        load_image(small, max_pixels=99)
    assert load_image(small, max_pixels=100).size == (10, 10)


def test_unsupported_mode_is_refused(tmp_path):
    path = save(tmp_path, "hsv.tif", Image.new("RGB", (2, 2)).convert("LAB"))
    with Image.open(path) as raw:
        assert raw.mode == "LAB"
    assert refused(path).reason == "unsupported image mode 'LAB'"


# --- Preprocess: every image becomes resize x resize x channels ----------------------------------------

def test_gray_and_rgb_become_three_channels_of_the_configured_size(tmp_path):
    pre = Preprocess(img_size=6, resize=10)
    gray = pre.decode(write_jpeg(tmp_path / "g.jpg", size=16, mode="L", shade=90))
    rgb = pre.decode(save(tmp_path, "r.png", Image.new("RGB", (20, 12), (10, 20, 30))))
    assert gray.shape == rgb.shape == (10, 10, 3) and gray.dtype == rgb.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 2]).all() and abs(int(gray[5, 5, 0]) - 90) <= 1
    assert rgb[4, 7].tolist() == [10, 20, 30]
    one = Preprocess(img_size=6, resize=10, mean=(0.5,), std=(0.5,), channels=1)
    assert one.decode(save(tmp_path, "r2.png", Image.new("RGB", (20, 12), (10, 20, 30)))).shape == (10, 10, 1)


def test_eval_batch_crops_the_centre_and_normalises():
    pre = Preprocess(img_size=2, resize=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    arr[1:3, 1:3] = 255
    x = pre.eval_batch([arr, arr])
    assert x.shape == (2, 3, 2, 2) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x, torch.full_like(x, 2.0))  # (1 - 0.5) / 0.25


def test_preprocess_checks_and_round_trips():
    with pytest.raises(ValueError, match=r"resize \(200\) must be >= img_size \(224\)"):
        Preprocess(img_size=224, resize=200)
    with pytest.raises(ValueError, match="channels must be 1 or 3, got 4"):
        Preprocess(img_size=224, resize=256, channels=4)
    pre = Preprocess(img_size=227, resize=256, mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0))
    assert Preprocess.from_dict(pre.to_dict()) == pre and pre.to_dict()["mean"] == [0.1, 0.2, 0.3]


# --- the decoded-image cache ----------------------------------------------------------------------------

def test_decode_samples_keeps_good_images_and_lists_failures(tmp_path):
    good = [write_jpeg(tmp_path / f"{i}.jpg", size=8, mode="L", shade=40 * i) for i in range(3)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    paths = [good[0], bad, good[1], good[2]]
    samples = [Sample(p.name, p, class_id=10 + i, target=i, origin="all") for i, p in enumerate(paths)]
    out = decode_samples(samples, Preprocess(img_size=4, resize=4), progress=False)
    assert len(out) == 3 and out.images.shape == (3, 4, 4, 3)
    assert out.targets.tolist() == [0, 2, 3] and [s.name for s in out.samples] == ["0.jpg", "1.jpg", "2.jpg"]
    assert out.failures == [(bad, "empty file (0 bytes)")]
    assert [abs(int(out.images[i, 0, 0, 0]) - 40 * i) <= 1 for i in range(3)] == [True] * 3
