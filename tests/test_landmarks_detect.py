"""Detection: known discs are found, tiles change nothing, no-data borders are masked."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deepmars.landmarks.config import DetectSettings, ReadSettings
from deepmars.landmarks.detect import block_mean, detect_landmarks, score_map
from deepmars.landmarks.nodata import nodata_mask
from deepmars.landmarks.reader import WorkingImage, read_working_image
from deepmars.landmarks.salience import salience_sum
from deepmars.landmarks.synthetic import disc_scene, terrain

DISCS = [(150, 128, 24, 200), (360, 380, 18, 40)]  # a bright and a dark "crater": row, col, radius, grey


def working(pixels: np.ndarray) -> WorkingImage:
    return WorkingImage(Path("scene.png"), pixels, pixels.shape[1], pixels.shape[0])


def test_boxes_surround_bright_and_dark_discs():
    cfg = DetectSettings()
    found = detect_landmarks(working(disc_scene(512, 512, DISCS)), cfg, "scene").landmarks
    assert len(found) == 2
    # The salient region reaches past a disc's rim by up to the window half-width plus the smoothing.
    reach = (cfg.window // 2 + cfg.smooth) * cfg.scales[0]
    for (cy, cx, r, _), lm in zip(DISCS, found, strict=True):  # raster order: the upper disc first
        assert lm.x <= cx - r and lm.x + lm.w >= cx + r and lm.y <= cy - r and lm.y + lm.h >= cy + r
        assert abs(lm.x + lm.w / 2 - cx) <= 4 and abs(lm.y + lm.h / 2 - cy) <= 4
        assert max(lm.w, lm.h) <= 2 * (r + reach)
    assert found[0].mean_intensity > 125 > 115 > found[1].mean_intensity  # background is 120
    assert [lm.index for lm in found] == [1, 2] and found[0].name == "scene-0001.jpg"


def test_source_frame_box_scales_back_to_full_resolution():
    pixels = disc_scene(512, 512, DISCS)
    image = WorkingImage(Path("big.tif"), pixels, source_width=5120, source_height=5120)
    lm = detect_landmarks(image, DetectSettings(), "big").landmarks[0]
    assert (lm.src_x, lm.src_y, lm.src_w, lm.src_h) == (lm.x * 10, lm.y * 10, lm.w * 10, lm.h * 10)


@pytest.mark.slow
def test_tiled_equals_whole_image():
    image = working(terrain(300, 400, seed=1))
    whole = DetectSettings(scales=(1, 2), window=9, smooth=1, tile_size=10_000, min_region=16)
    tiled = replace(whole, tile_size=37)  # tiles that divide nothing, halos crossing tile corners
    for s in whole.scales:
        pixels, valid = block_mean(image.pixels, np.ones(image.pixels.shape, bool), s)
        np.testing.assert_array_equal(score_map(pixels, valid, 9, 1, 37), score_map(pixels, valid, 9, 1, 10_000))
    expected = detect_landmarks(image, whole, "t").landmarks
    assert len(expected) >= 5
    assert detect_landmarks(image, tiled, "t").landmarks == expected


def test_score_is_box_summed_salience_over_box_summed_count():
    image = terrain(12, 15, seed=2)
    valid = np.ones(image.shape, bool)
    valid[:3, :4] = False
    total, count = salience_sum(image, 2, valid)
    score = score_map(image, valid, window=5, smooth=1, tile_size=4)
    for y, x in [(0, 0), (5, 7), (11, 14), (3, 4), (0, 14)]:
        box = (slice(max(0, y - 1), y + 2), slice(max(0, x - 1), x + 2))
        expected = np.float32(total[box].sum() / count[box].sum()) if valid[y, x] else 0.0
        assert score[y, x] == expected


def test_block_mean_rounds_and_invalidates_partly_masked_blocks():
    image = np.array([[0, 1, 10], [2, 3, 20]], dtype=np.uint8)
    valid = np.array([[True, True, True], [True, True, False]])
    pixels, cell_valid = block_mean(image, valid, 2)
    assert pixels.tolist() == [[2, 15]]  # 6/4 = 1.5 rounds up; 30/2 = 15 (partial block)
    assert cell_valid.tolist() == [[True, False]]


def test_all_no_data_image_gives_zero_landmarks_and_says_so():
    result = detect_landmarks(working(np.zeros((300, 300), np.uint8)), DetectSettings(), "black")
    assert result.landmarks == [] and "no-data" in result.notes[0]


def test_data_only_in_a_sliver_narrower_than_a_block_gives_zero_landmarks():
    image = np.zeros((300, 300), np.uint8)
    image[:, 100:106] = 150  # 6 px of data; after the 2 px mask margin, no 4x4 block is all data
    assert detect_landmarks(working(image), DetectSettings(), "sliver").landmarks == []


def test_flat_image_with_mask_off_gives_zero_landmarks():
    result = detect_landmarks(working(np.full((300, 300), 90, np.uint8)), DetectSettings(nodata_mask=False), "f")
    assert result.landmarks == []


def test_image_smaller_than_window_is_skipped_with_a_reason():
    result = detect_landmarks(working(disc_scene(40, 60, [(20, 30, 8, 200)])), DetectSettings(), "tiny")
    assert result.landmarks == []
    assert "smaller than the 17-pixel window" in result.notes[0]


def test_nodata_mask_keeps_dark_features_enclosed_by_surface():
    image = disc_scene(200, 200, [(100, 100, 20, 0)])  # a black spot inside the surface
    image[:, :30] = 0  # a black border band
    mask = nodata_mask(image, max_value=5, margin=2)
    assert mask[:, :32].all() and not mask[:, 32:].any()


def test_long_regions_are_split_into_pieces_of_max_side():
    image = np.full((400, 400), 120, np.uint8)
    image[196:204, 20:380] = 250  # a 360-pixel bright line
    cfg = DetectSettings(scales=(1,), window=9, smooth=0, min_region=1, max_side=100, nodata_mask=False)
    found = detect_landmarks(working(image), cfg, "line").landmarks
    assert len(found) >= 4 and all(max(lm.w, lm.h) <= 100 for lm in found)
    whole = detect_landmarks(working(image), replace(cfg, max_side=1000), "line").landmarks
    assert len(whole) == 1 and whole[0].w > 360


BROWSE = "hirise_browse/ESP_072719_1970_RED.browse.jpg"


@pytest.fixture(scope="module")
def browse() -> WorkingImage:
    root = os.environ.get("DEEPMARS_DATA")
    if not root:
        pytest.skip("DEEPMARS_DATA is unset: the real HiRISE browse image is not available")
    path = Path(root) / BROWSE
    if not path.is_file():
        pytest.skip(f"{path} not found under DEEPMARS_DATA")
    return read_working_image(path, ReadSettings())


def _nodata_fraction(image: WorkingImage, lm) -> float:
    box = image.pixels[lm.y:lm.y + lm.h, lm.x:lm.x + lm.w]
    return float((box <= 5).mean())


@pytest.mark.slow
@pytest.mark.real_data
def test_nodata_mask_removes_border_detections_on_real_browse_image(browse):
    masked = detect_landmarks(browse, DetectSettings(), "ESP_072719_1970_RED").landmarks
    paper = detect_landmarks(browse, DetectSettings(nodata_mask=False), "ESP_072719_1970_RED").landmarks
    edge_paper = [lm for lm in paper if _nodata_fraction(browse, lm) > 0.2]
    edge_masked = [lm for lm in masked if _nodata_fraction(browse, lm) > 0.2]
    assert len(edge_paper) >= 10  # paper mode: the border triangles are detected ("edge")
    assert edge_masked == []
    assert len(masked) >= 50  # the surface: craters, the dark spot, ridges
    # the dark impact-ejecta spot (grey level 0, enclosed by surface) is a landmark, not no-data
    assert any(lm.x < 900 < lm.x + lm.w and lm.y < 1180 < lm.y + lm.h for lm in masked)
