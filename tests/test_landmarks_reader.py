"""Reading at working scale; bad files become ImageError naming the file; 16-bit is scaled."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from deepmars.errors import ImageError
from deepmars.landmarks.config import ReadSettings
from deepmars.landmarks.reader import read_working_image, to_uint8, working_size
from deepmars.landmarks.synthetic import terrain


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    return np.floor(a.reshape(h // k, k, w // k, k).mean(axis=(1, 3)) + 0.5).astype(np.uint8)


def test_working_size_browse_and_factor():
    assert working_size(23846, 34927, ReadSettings()) == (2048, 2999)  # the real product -> its browse
    assert working_size(1000, 500, ReadSettings()) == (1000, 500)  # never enlarged
    assert working_size(1000, 500, ReadSettings(working_scale=0.25)) == (250, 125)


def test_tiled_tiff_is_block_averaged_tile_by_tile(tmp_path):
    image = terrain(256, 384, seed=3)
    tifffile.imwrite(tmp_path / "t.tif", image, tile=(64, 48))
    got = read_working_image(tmp_path / "t.tif", ReadSettings(working_scale=0.25))
    np.testing.assert_array_equal(got.pixels, block_mean(image, 4))
    assert (got.source_width, got.source_height, got.scale_x) == (384, 256, 0.25)
    full = read_working_image(tmp_path / "t.tif", ReadSettings(working_scale=1.0))
    np.testing.assert_array_equal(full.pixels, image)


def test_stripped_tiff_reads_the_same(tmp_path):
    image = terrain(128, 96, seed=4)
    tifffile.imwrite(tmp_path / "s.tif", image, rowsperstrip=7)
    got = read_working_image(tmp_path / "s.tif", ReadSettings(working_scale=0.5))
    np.testing.assert_array_equal(got.pixels, block_mean(image, 2))


def test_large_jpeg_is_reduced_by_the_decoder(tmp_path):
    image = terrain(1024, 1536, seed=5)
    Image.fromarray(image).save(tmp_path / "big.jpg", quality=95)
    got = read_working_image(tmp_path / "big.jpg", ReadSettings(browse_width=384))
    assert got.pixels.shape == (256, 384)
    assert np.abs(got.pixels.astype(int) - block_mean(image, 4)).mean() < 2.0
    odd = read_working_image(tmp_path / "big.jpg", ReadSettings(browse_width=300))  # 1/4 draft, then resampled
    assert odd.pixels.shape == (200, 300) and odd.pixels.dtype == np.uint8
    assert abs(float(odd.pixels.mean()) - float(image.mean())) < 1.0


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_input_is_scaled_by_its_range(tmp_path, suffix):
    image = terrain(64, 80, seed=6)
    image[0, 0], image[0, 1] = 0, 255
    wide = image.astype(np.uint16) * 257  # 0..65535; scaling by its range gives the 8-bit image back
    path = tmp_path / f"w{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, wide)
    else:
        Image.fromarray(wide).save(path)
    np.testing.assert_array_equal(read_working_image(path, ReadSettings()).pixels, image)


def test_to_uint8_maps_min_and_max_and_flat_to_zero():
    assert to_uint8(np.array([[100, 1100, 600]], np.uint16)).tolist() == [[0, 255, 128]]
    assert not to_uint8(np.full((2, 2), 7, np.uint16)).any()


def test_non_image_file_names_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(ImageError, match="notes.jpg.*not an image"):
        read_working_image(path, ReadSettings())


def test_truncated_jpeg_names_the_file(tmp_path):
    Image.fromarray(terrain(256, 256, seed=7)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg.*truncated"):
        read_working_image(tmp_path / "cut.jpg", ReadSettings())


def test_truncated_tiff_names_the_file(tmp_path):
    tifffile.imwrite(tmp_path / "ok.tif", terrain(256, 256, seed=8), tile=(64, 64))
    data = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[:2000])
    with pytest.raises(ImageError, match="cut.tif"):
        read_working_image(tmp_path / "cut.tif", ReadSettings())


def test_tiff_in_one_huge_strip_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr("deepmars.landmarks.reader.MAX_SEGMENT_BYTES", 10_000)
    tifffile.imwrite(tmp_path / "strip.tif", terrain(128, 128, seed=11), rowsperstrip=128)
    with pytest.raises(ImageError, match="strip.tif.*strips of .*re-save it tiled"):
        read_working_image(tmp_path / "strip.tif", ReadSettings())


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ImageError, match="gone.jpg.*cannot read"):
        read_working_image(tmp_path / "gone.jpg", ReadSettings())
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png.*empty file"):
        read_working_image(tmp_path / "empty.png", ReadSettings())


def test_source_and_working_pixel_limits(tmp_path):
    Image.fromarray(terrain(64, 64, seed=9)).save(tmp_path / "a.jpg")
    with pytest.raises(ImageError, match="max_source_pixels"):
        read_working_image(tmp_path / "a.jpg", ReadSettings(max_source_pixels=1000))
    with pytest.raises(ImageError, match="max_working_pixels"):
        read_working_image(tmp_path / "a.jpg", ReadSettings(max_working_pixels=1000))


def test_jpeg2000_is_decoded_at_a_reduced_level(tmp_path):
    image = terrain(256, 384, seed=10)
    Image.fromarray(image).save(tmp_path / "p.jp2", irreversible=False)
    got = read_working_image(tmp_path / "p.jp2", ReadSettings(working_scale=0.25))
    assert got.pixels.shape == (64, 96) and (got.source_width, got.source_height) == (384, 256)
    assert np.abs(got.pixels.astype(int) - block_mean(image, 4)).mean() < 4.0
