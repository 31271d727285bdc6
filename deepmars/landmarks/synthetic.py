"""Generated scenes with known landmarks, for tests and the throughput benchmark.

Discs on a noisy grey background stand in for craters and dark spots: their boxes are known, so a
detector run can be checked against them. ``write_tiled_tiff`` streams an arbitrarily large scene to
disk one tile at a time, so the 1-gigapixel benchmark input never exists whole in memory either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

# (centre row, centre column, radius, grey level)
Disc = tuple[int, int, int, int]


def disc_scene(height: int, width: int, discs: Sequence[Disc], background: int = 120, noise: float = 3.0,
               seed: int = 0) -> np.ndarray:
    """uint8 image: ``background`` plus Gaussian noise, with each disc painted at its grey level."""
    rng = np.random.default_rng(seed)
    img = background + rng.normal(0.0, noise, size=(height, width))
    yy, xx = np.ogrid[:height, :width]
    for cy, cx, r, level in discs:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = level
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def terrain(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 textured field (smoothed noise at two scales) with a few discs: a busy test scene."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, size=(height // 16 + 2, width // 16 + 2))
    field = np.kron(coarse, np.ones((16, 16)))[:height, :width] * 12.0
    field += rng.normal(0.0, 6.0, size=(height, width)) + 128.0
    yy, xx = np.ogrid[:height, :width]
    for _ in range(max(1, height * width // 20_000)):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = int(rng.integers(4, 24))
        field[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] += rng.choice([-70.0, 70.0])
    return np.clip(np.rint(field), 0, 255).astype(np.uint8)


def _tiles(height: int, width: int, tile: int, seed: int) -> Iterator[np.ndarray]:
    """Tiles in row-major order: one shared noise texture, each tile with its own disc (never crossing
    tiles), so a gigapixel scene is generated in seconds."""
    base = disc_scene(tile, tile, [], noise=8.0, seed=seed)
    yy, xx = np.ogrid[:tile, :tile]
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            rng = np.random.default_rng((seed, ty, tx))
            cy, cx = rng.integers(tile // 4, 3 * tile // 4, size=2)
            r = int(rng.integers(tile // 16, tile // 5))
            out = base.copy()
            out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.choice([30, 220])
            yield out


def write_tiled_tiff(path: str | Path, height: int, width: int, tile: int = 1024, seed: int = 0) -> Path:
    """Write an uncompressed tiled 8-bit TIFF of height x width, generated and written tile by tile."""
    if height % tile or width % tile:
        raise ValueError(f"height and width must be multiples of the tile size {tile}")
    path = Path(path)
    tifffile.imwrite(path, _tiles(height, width, tile, seed), shape=(height, width), dtype=np.uint8,
                     tile=(tile, tile), bigtiff=height * width > 2**31)
    return path


def write_jpeg(path: str | Path, height: int, width: int, tile: int = 1024, seed: int = 0) -> Path:
    """The same scene as ``write_tiled_tiff`` as one baseline JPEG (sides <= 65,535).

    PIL encodes a JPEG from a whole in-memory image, so this writer (unlike the reader) needs
    height x width bytes; run it in a process of its own when measuring the reader's memory.
    """
    if height % tile or width % tile:
        raise ValueError(f"height and width must be multiples of the tile size {tile}")
    image = np.empty((height, width), dtype=np.uint8)
    tiles = _tiles(height, width, tile, seed)
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            image[ty:ty + tile, tx:tx + tile] = next(tiles)
    path = Path(path)
    Image.fromarray(image).save(path, format="JPEG", quality=90)
    return path
