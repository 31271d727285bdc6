"""Crops: a square around the landmark's full extent plus a margin, as a 227x227 grey JPEG.

This is the published recipe (HiRISE data sets v1 and v3): square box around the landmark, a 30 px
margin on every side, resized to AlexNet's 227x227 input.

At the image edge the square is padded, not clipped: the part outside the image is filled with 0,
the grey level of map-projected no-data. Padding keeps the square (no aspect-ratio distortion when
resizing, unlike a clipped rectangle) and keeps the landmark at the centre of its crop as in every
other crop; an edge crop then looks like the published "edge" crops, with black beside the surface.

Crops are JPEG-encoded once; the pixels handed to a classifier are those decoded from the same bytes
that are written, so what a model sees at inference is exactly what is on disk for training.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from deepmars.landmarks.config import CropSettings
from deepmars.landmarks.landmark import Landmark


@dataclass(frozen=True)
class CropBox:
    """Square crop in the working frame; may extend past the image (padded there)."""

    x: int
    y: int
    side: int


def crop_box(lm: Landmark, margin: int) -> CropBox:
    """Square of side max(w, h) + 2*margin, centred on the landmark's box.

    The landmark's short side is centred (extra pixel, if odd, goes right/down), so the long side
    has exactly ``margin`` pixels on both ends and the short side at least ``margin``.
    """
    long_side = max(lm.w, lm.h)
    return CropBox(x=lm.x - (long_side - lm.w) // 2 - margin, y=lm.y - (long_side - lm.h) // 2 - margin,
                   side=long_side + 2 * margin)


def cut_square(pixels: np.ndarray, box: CropBox) -> np.ndarray:
    """The box's pixels, with 0 wherever it extends beyond the image."""
    out = np.zeros((box.side, box.side), dtype=np.uint8)
    height, width = pixels.shape
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.side), min(height, box.y + box.side)
    if x1 > x0 and y1 > y0:
        out[y0 - box.y: y1 - box.y, x0 - box.x: x1 - box.x] = pixels[y0:y1, x0:x1]
    return out


def encode_crop(pixels: np.ndarray, lm: Landmark, cfg: CropSettings) -> bytes:
    """JPEG bytes of the landmark's crop, resized (Lanczos, antialiased) to size x size."""
    square = Image.fromarray(cut_square(pixels, crop_box(lm, cfg.margin)), mode="L")
    resized = square.resize((cfg.size, cfg.size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    resized.save(buf, format="JPEG", quality=cfg.jpeg_quality)
    return buf.getvalue()


def decode_crop(data: bytes) -> np.ndarray:
    """uint8 (size, size) pixels of an encoded crop."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"))
