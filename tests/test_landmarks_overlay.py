"""Overlay PNG: downsampled image, one box per landmark in its class colour, a legend."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepmars.landmarks.landmark import Landmark
from deepmars.landmarks.overlay import PALETTE, write_overlay
from deepmars.landmarks.reader import WorkingImage


def landmark(i: int, x: int, y: int, w: int, h: int) -> Landmark:
    return Landmark(source="s", index=i, x=x, y=y, w=w, h=h, src_x=x, src_y=y, src_w=w, src_h=h, area=w * h,
                    mean_intensity=0.0, std_intensity=0.0, eccentricity=0.0, salience=0.0, scale=1)


@pytest.fixture
def image() -> WorkingImage:
    return WorkingImage(Path("s.png"), np.full((800, 600), 128, np.uint8), 600, 800)


def colour_at(path: Path, x: int, y: int) -> tuple[int, int, int]:
    with Image.open(path) as img:
        return img.convert("RGB").getpixel((x, y))


def test_boxes_take_their_class_colour_and_the_image_is_downsampled(image, tmp_path):
    marks = [landmark(1, 200, 300, 100, 100), landmark(2, 400, 500, 100, 100)]
    path = write_overlay(image, marks, tmp_path / "o.png", max_side=400, classes=["crater", "other"],
                         class_order=["other", "crater"])
    with Image.open(path) as img:
        assert img.size == (300, 400)
    assert colour_at(path, 100, 175) == PALETTE[1]  # crater box, left edge at x = 200 / 2
    assert colour_at(path, 200, 275) == PALETTE[0]  # other box
    assert colour_at(path, 125, 200) == (128, 128, 128)  # inside a box: the image itself


def test_unclassified_boxes_share_one_colour_and_the_legend_counts_them(image, tmp_path):
    path = write_overlay(image, [landmark(1, 200, 300, 100, 100)], tmp_path / "u.png")
    assert colour_at(path, 200, 350) == (255, 200, 0)
    with Image.open(path) as img:
        legend = np.asarray(img.convert("RGB"))[:40, :200]
    assert (legend == 255).all(axis=2).any() and (legend == (255, 200, 0)).all(axis=2).any()


def test_class_names_must_match_landmarks(image, tmp_path):
    with pytest.raises(ValueError, match="1 class names for 2 landmarks"):
        write_overlay(image, [landmark(1, 0, 0, 5, 5), landmark(2, 9, 9, 5, 5)], tmp_path / "x.png", classes=["a"])
