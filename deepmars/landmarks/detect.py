"""Landmark detection on a working image: salience -> threshold -> connected regions.

For each detection scale s the working image is block-averaged by s (denoises, and makes the fixed
window cover s times more ground), the salience score map is computed in overlapping tiles, the
score is thresholded at a quantile of its valid pixels, and each 8-connected region above it becomes
a landmark (skimage regionprops). A region longer than ``max_side`` is cut into pieces on a grid of
that size; regions outside [min_region, max_region] are dropped. Regions found at several scales are
merged by box overlap.

Memory: the working image and its no-data mask are held whole (the mask's labelling peaks at about
9 bytes per working pixel), the score and label maps at detection scale (1/s^2 of that, times ~14
bytes), and the salience temporaries per tile. The working image is bounded by
read.max_working_pixels, and a source of any size is reduced to it while it is read (reader.py).

The score of a pixel is sum(S) / sum(N) over a small box of radius ``smooth`` around it (S, N from
salience.py): the mean absolute grey-level difference between the box's pixels and their windows.
The box average joins the bright and the shadowed half of a crater into one region; both sums are
integers, so the score does not depend on where a tile starts (tiled == whole image, exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from skimage.measure import label, regionprops

from deepmars.landmarks.config import DetectSettings
from deepmars.landmarks.landmark import Landmark
from deepmars.landmarks.nodata import nodata_mask
from deepmars.landmarks.reader import WorkingImage
from deepmars.landmarks.salience import salience_sum


@dataclass
class Detection:
    """Landmarks of one image, plus notes on why there are none or fewer (all no-data, too small)."""

    landmarks: list[Landmark]
    valid: np.ndarray  # working-frame data mask (False on no-data)
    notes: list[str] = field(default_factory=list)


def block_mean(image: np.ndarray, valid: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Average s x s blocks (partial blocks at the edges too); a block is valid only if all of it is."""
    if s == 1:
        return image, valid
    rows = np.arange(0, image.shape[0], s)
    cols = np.arange(0, image.shape[1], s)
    # Rows first with a uint32 accumulator: no full-size widened copy of the image.
    sums = np.add.reduceat(np.add.reduceat(image, rows, axis=0, dtype=np.uint32), cols, axis=1)
    counts = np.outer(np.diff(np.r_[rows, image.shape[0]]), np.diff(np.r_[cols, image.shape[1]]))
    invalid = np.add.reduceat(np.add.reduceat(~valid, rows, axis=0, dtype=np.uint32), cols, axis=1)
    return ((sums + counts // 2) // counts).astype(np.uint8), invalid == 0


def _box_sum(a: np.ndarray, radius: int) -> np.ndarray:
    """Exact int64 sum over the (2r+1)^2 box around each pixel, clipped at the array edge."""
    if radius == 0:
        return a.astype(np.int64)
    c = np.zeros((a.shape[0] + 2 * radius + 1, a.shape[1] + 2 * radius + 1), dtype=np.int64)
    c[radius + 1: radius + 1 + a.shape[0], radius + 1: radius + 1 + a.shape[1]] = a
    c = c.cumsum(axis=0).cumsum(axis=1)
    k = 2 * radius + 1
    h, w = a.shape
    return c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]


def score_map(image: np.ndarray, valid: np.ndarray, window: int, smooth: int, tile_size: int) -> np.ndarray:
    """Smoothed mean salience (float32, 0 on no-data), computed tile by tile with a halo.

    The halo is radius + smooth: every S the box average of a core pixel uses then has its whole
    window inside the tile, so each tile's core equals the same pixels of a whole-image run.
    """
    radius, halo = window // 2, window // 2 + smooth
    height, width = image.shape
    out = np.zeros(image.shape, dtype=np.float32)
    for ty in range(0, height, tile_size):
        for tx in range(0, width, tile_size):
            y0, y1 = max(0, ty - halo), min(height, ty + tile_size + halo)
            x0, x1 = max(0, tx - halo), min(width, tx + tile_size + halo)
            total, count = salience_sum(image[y0:y1, x0:x1], radius, valid[y0:y1, x0:x1])
            core = (slice(ty - y0, min(ty + tile_size, height) - y0), slice(tx - x0, min(tx + tile_size, width) - x0))
            s_box, n_box = _box_sum(total, smooth)[core], _box_sum(count, smooth)[core]
            dest = (slice(ty, ty + s_box.shape[0]), slice(tx, tx + s_box.shape[1]))
            np.divide(s_box, n_box, out=out[dest], where=valid[dest] & (n_box > 0), casting="unsafe")
    return out


def _source_box(working: WorkingImage, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
    """Smallest source-pixel box covering a working-pixel box."""
    sx0, sy0 = math.floor(x / working.scale_x), math.floor(y / working.scale_y)
    sx1 = min(working.source_width, math.ceil((x + w) / working.scale_x))
    sy1 = min(working.source_height, math.ceil((y + h) / working.scale_y))
    return sx0, sy0, sx1 - sx0, sy1 - sy0


def _pieces(region, max_cells: int) -> list[tuple[np.ndarray, int, int]]:
    """The region's mask (with its top-left cell), or, when a side exceeds max_cells, its pieces.

    Pieces are the connected parts of the region inside a max_cells grid anchored at its box. Without
    this the no-data border in paper mode (mask off) would be one landmark the size of the image;
    the 2018 data set instead has many "edge" crops along it.
    """
    r0, c0, r1, c1 = region.bbox
    if max(r1 - r0, c1 - c0) <= max_cells:
        return [(region.image, r0, c0)]
    out = []
    for by in range(0, r1 - r0, max_cells):
        for bx in range(0, c1 - c0, max_cells):
            block = label(region.image[by:by + max_cells, bx:bx + max_cells], connectivity=2)
            out.extend((piece.image, r0 + by + piece.bbox[0], c0 + bx + piece.bbox[1]) for piece in regionprops(block))
    return out


def _measure(mask: np.ndarray, r0: int, c0: int, image: np.ndarray, score: np.ndarray, s: int,
             working: WorkingImage, source: str) -> Landmark:
    """Landmark for one region mask whose top-left detection-scale cell is (r0, c0)."""
    window = (slice(r0, r0 + mask.shape[0]), slice(c0, c0 + mask.shape[1]))
    props = regionprops(mask.astype(np.uint8), intensity_image=image[window])[0]
    height, width = working.pixels.shape
    x, y = c0 * s, r0 * s
    return Landmark(
        source=source, index=0, x=x, y=y, w=min(width, (c0 + mask.shape[1]) * s) - x,
        h=min(height, (r0 + mask.shape[0]) * s) - y, src_x=0, src_y=0, src_w=0, src_h=0,
        area=int(props.area) * s * s, mean_intensity=float(props.intensity_mean),
        std_intensity=float(props.intensity_std), eccentricity=float(props.eccentricity),
        salience=float(score[window][mask].mean(dtype=np.float64)), scale=s)


def _regions_at_scale(working: WorkingImage, valid: np.ndarray, s: int, cfg: DetectSettings,
                      source: str) -> list[Landmark]:
    image, cell_valid = block_mean(working.pixels, valid, s)
    if not cell_valid.any():  # data only in slivers narrower than a block
        return []
    score = score_map(image, cell_valid, cfg.window, cfg.smooth, cfg.tile_size)
    threshold = float(np.quantile(score[cell_valid], cfg.threshold_quantile))
    labels = label((score > threshold) & cell_valid, connectivity=2)
    max_cells = max(1, cfg.max_side // s)
    found = []
    for region in regionprops(labels):
        for mask, r0, c0 in _pieces(region, max_cells):
            if cfg.min_region <= int(mask.sum()) * s * s <= cfg.max_region:
                found.append(_measure(mask, r0, c0, image, score, s, working, source))
    return found


def _iou(a: Landmark, b: Landmark) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter)


def _merge(per_scale: list[list[Landmark]], merge_iou: float) -> list[Landmark]:
    """Keep each region unless its box overlaps one kept from an earlier-listed scale by >= merge_iou."""
    kept: list[Landmark] = []
    for found in per_scale:
        earlier = list(kept)
        kept.extend(lm for lm in found if all(_iou(lm, k) < merge_iou for k in earlier))
    return kept


def _numbered(working: WorkingImage, found: list[Landmark]) -> list[Landmark]:
    """Raster order (top to bottom, left to right) so numbering is stable; ids start at 1."""
    found = sorted(found, key=lambda lm: (lm.y, lm.x, lm.scale))
    out = []
    for i, lm in enumerate(found, start=1):
        sx, sy, sw, sh = _source_box(working, lm.x, lm.y, lm.w, lm.h)
        out.append(replace(lm, index=i, src_x=sx, src_y=sy, src_w=sw, src_h=sh))
    return out


def detect_landmarks(working: WorkingImage, cfg: DetectSettings, source: str) -> Detection:
    """Find the landmarks of one working image (see the module docstring for the method)."""
    if cfg.nodata_mask:
        valid = ~nodata_mask(working.pixels, cfg.nodata_max_value, cfg.nodata_margin)
    else:
        valid = np.ones(working.pixels.shape, dtype=bool)
    if not valid.any():
        return Detection([], valid, ["all pixels are no-data: no landmarks"])
    notes, per_scale = [], []
    height, width = working.pixels.shape
    for s in cfg.scales:
        cells = (-(-height // s), -(-width // s))
        if min(cells) < cfg.window:
            notes.append(f"scale {s}: image of {width}x{height} working pixels is {cells[1]}x{cells[0]} at this "
                         f"scale, smaller than the {cfg.window}-pixel window: skipped")
            continue
        per_scale.append(_regions_at_scale(working, valid, s, cfg, source))
    return Detection(_numbered(working, _merge(per_scale, cfg.merge_iou)), valid, notes)
