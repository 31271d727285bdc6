"""Crops: square box + 30 px margin on every side, padded with black past the edge, 227x227 JPEG."""

import numpy as np

from deepmars.landmarks.config import CropSettings
from deepmars.landmarks.crops import crop_box, cut_square, decode_crop, encode_crop
from deepmars.landmarks.landmark import Landmark


def landmark(x: int, y: int, w: int, h: int) -> Landmark:
    return Landmark(source="s", index=1, x=x, y=y, w=w, h=h, src_x=x, src_y=y, src_w=w, src_h=h, area=w * h,
                    mean_intensity=0.0, std_intensity=0.0, eccentricity=0.0, salience=0.0, scale=1)


def test_square_box_has_the_margin_on_the_long_side_and_centres_the_short_one():
    box = crop_box(landmark(100, 80, 40, 20), margin=30)
    assert (box.x, box.y, box.side) == (70, 40, 100)  # 30 px left/right; 40 px (10 + 30) above/below
    box = crop_box(landmark(100, 80, 21, 40), margin=30)
    assert (box.x, box.y, box.side) == (61, 50, 100)  # short side 21: 9 px left, 10 px right, + 30 each


def test_cut_square_takes_the_box_pixels():
    pixels = np.arange(300 * 300, dtype=np.int64).reshape(300, 300).astype(np.uint8)
    box = crop_box(landmark(100, 80, 40, 20), margin=30)
    np.testing.assert_array_equal(cut_square(pixels, box), pixels[40:140, 70:170])


def test_margin_is_visible_in_the_resized_crop():
    # A white 40x40 landmark on black: in the 100 px square it spans 30..70, so in the 227 px crop
    # it spans 227 * 30/100 = 68.1 .. 227 * 70/100 = 158.9.
    pixels = np.zeros((400, 400), np.uint8)
    pixels[200:240, 150:190] = 255
    crop = decode_crop(encode_crop(pixels, landmark(150, 200, 40, 40), CropSettings()))
    assert crop.shape == (227, 227) and crop.dtype == np.uint8
    bright = np.flatnonzero(crop[113] > 127)
    assert abs(bright[0] - 68.1) <= 1.5 and abs(bright[-1] + 1 - 158.9) <= 1.5
    bright_rows = np.flatnonzero(crop[:, 113] > 127)
    assert abs(bright_rows[0] - 68.1) <= 1.5 and abs(bright_rows[-1] + 1 - 158.9) <= 1.5


def test_edge_crop_is_padded_with_black_not_clipped():
    pixels = np.full((200, 200), 150, np.uint8)
    box = crop_box(landmark(0, 10, 20, 20), margin=30)  # reaches 30 px past the left edge
    square = cut_square(pixels, box)
    assert square.shape == (80, 80)
    assert (square[:, :30] == 0).all() and (square[:20, 30:] == 0).all()  # 20 rows above row 0 too
    assert (square[20:, 30:] == 150).all()


def test_crop_entirely_outside_is_black():
    assert not cut_square(np.full((10, 10), 9, np.uint8), crop_box(landmark(50, 50, 4, 4), 2)).any()
