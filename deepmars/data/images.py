"""Decoding one image safely: every way a file can be bad becomes an ImageError with a reason.

Training, prediction and the landmark detector all decode through here, so a corrupt file is
reported the same way everywhere and never stops a batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deepmars.errors import ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

# Above this many pixels an image is refused before decoding: a crafted header can claim
# gigapixel dimensions in a few bytes (decompression bomb). Whole-image readers only; the
# landmark detector reads large HiRISE products in tiles and sets its own limit.
MAX_PIXELS = 64_000_000

# Modes converted without loss of meaning; anything else is refused with a reason.
_CONVERTIBLE = {"L", "RGB", "RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "I;16", "I;16B", "I;16L", "I", "F", "1"}


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit and float images are scaled by their own range (documented in the README)."""
    arr = arr.astype(np.float64)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip((arr - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = Image.fromarray(_scale_to_uint8(np.asarray(img)), mode="L")
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels composited on black: alpha carries no content in these archives.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != mode:
        img = img.convert(mode)
    return img


def load_image(path: str | Path, mode: str = "RGB", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``path`` fully into ``mode`` ("RGB" or "L"), or raise ImageError saying why."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})", path) from None
    if size == 0:
        raise ImageError("empty file (0 bytes)", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"image is {w}x{h} = {w * h:,} pixels, above the limit of {max_pixels:,} "
                        "(decompression-bomb guard)", path)
                if img.mode not in _CONVERTIBLE:
                    raise ImageError(f"unsupported image mode {img.mode!r}", path)
                img.load()
                return _to_mode(img, mode)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image PIL can identify (wrong extension or corrupt header)", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"decompression-bomb guard: {exc}", path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncated and corrupt data as OSError ("image file is truncated", ...).
        raise ImageError(f"corrupt or truncated image data ({exc})", path) from None
