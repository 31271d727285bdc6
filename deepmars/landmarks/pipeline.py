"""One image in, its landmarks and crops out: the seam where classification plugs in.

``process_image`` reads a source image at working scale, detects its landmarks and encodes their
crops, touching no output folder. A classifier (deepmars.prediction) calls it, runs its model on
``ImageLandmarks.crops`` (uint8, N x 227 x 227, the exact pixels of the JPEGs written for training)
and writes catalog rows from ``landmarks`` (boxes in working and source pixels); ``overlay.write_overlay``
takes its class names to colour the boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepmars.catalog.paths import to_catalog_text
from deepmars.landmarks.config import LandmarkSettings
from deepmars.landmarks.crops import decode_crop, encode_crop
from deepmars.landmarks.detect import detect_landmarks
from deepmars.landmarks.landmark import Landmark
from deepmars.landmarks.reader import WorkingImage, read_working_image


@dataclass
class ImageLandmarks:
    """Everything found in one source image."""

    source: str
    working: WorkingImage
    landmarks: list[Landmark]
    jpegs: list[bytes]  # encoded crop of landmarks[i], as written to disk
    notes: list[str] = field(default_factory=list)  # why there are no or fewer landmarks

    @property
    def crops(self) -> np.ndarray:
        """uint8 (N, size, size) crop pixels, decoded from ``jpegs``."""
        if not self.jpegs:
            return np.zeros((0, 0, 0), dtype=np.uint8)
        return np.stack([decode_crop(data) for data in self.jpegs])


def source_name(path: str | Path) -> str:
    """Source id for crop names: the file name up to its first dot, whitespace made '_'.

    HiRISE product ids contain no dot, so ``ESP_072719_1970_RED.browse.jpg`` and the full product
    ``ESP_072719_1970_RED.JP2`` both give ``ESP_072719_1970_RED``, the id the v1 crops carry. Bytes of
    the name that are not UTF-8 are written ``\\xNN`` (the catalog's path rule), so the id can name
    crop files, CSV rows and catalog rows.
    """
    name = Path(path).name.split(".", 1)[0] or Path(path).name
    return re.sub(r"\s+", "_", to_catalog_text(name))


def process_image(path: str | Path, settings: LandmarkSettings, source: str | None = None) -> ImageLandmarks:
    """Read, detect and crop one image; raises ImageError when the file cannot be used."""
    working = read_working_image(path, settings.read)
    source = source or source_name(path)
    detection = detect_landmarks(working, settings.detect, source)
    jpegs = [encode_crop(working.pixels, lm, settings.crops) for lm in detection.landmarks]
    return ImageLandmarks(source, working, detection.landmarks, jpegs, detection.notes)
