"""Reading a source image at the working scale, reduced while reading, never decoded whole.

Full-resolution HiRISE products are up to tens of thousands of pixels a side; the landmarks of the
published data sets were found on browse images about 12x coarser. So each format is reduced as it
is decoded, and memory follows the working size, not the source size:

- JPEG: libjpeg's DCT scaling (PIL ``draft``) decodes at 1/2, 1/4 or 1/8 directly;
- JPEG 2000 (HiRISE RDR products): OpenJPEG decodes a lower resolution level (PIL ``reduce``);
- TIFF, tiled or stripped: tifffile decodes one tile/strip at a time, block-averaged into the grid;
- anything else PIL reads (PNG, ...) is decoded whole by ``deepmars.data.images.load_image``, so it
  must fit that loader's pixel limit.
The reduced image is then resampled (box filter) to the exact working size.

16-bit and float inputs are scaled to 8 bits by their own range (min -> 0, max -> 255), the rule
``load_image`` applies; here the range is that of the reduced image. No-data pixels of HiRISE
products are 0, the minimum, so they stay 0.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from deepmars.data.images import MAX_PIXELS, load_image
from deepmars.errors import ImageError
from deepmars.landmarks.config import ReadSettings

TIFF_SUFFIXES = (".tif", ".tiff")
JPEG2000_SUFFIXES = (".jp2", ".j2k", ".jpx")
READ_BUFFER = 32 * 2**20  # bytes of TIFF tiles read from disk at a time
MAX_SEGMENT_BYTES = 256 * 2**20  # one TIFF tile or strip decoded at a time must fit this


@dataclass(frozen=True)
class WorkingImage:
    """A source image at working scale: 8-bit grey pixels plus what maps them back to the source."""

    path: Path
    pixels: np.ndarray  # uint8, (height, width) at working scale
    source_width: int
    source_height: int

    @property
    def scale_x(self) -> float:
        """Working pixels per source pixel along x (1.0 when read at full resolution)."""
        return self.pixels.shape[1] / self.source_width

    @property
    def scale_y(self) -> float:
        return self.pixels.shape[0] / self.source_height


def working_size(width: int, height: int, read: ReadSettings) -> tuple[int, int]:
    """(width, height) of the working image; never larger than the source."""
    factor = read.working_scale if read.working_scale is not None else min(1.0, read.browse_width / width)
    # Truncate like the HiRISE browse products do (23846x34927 -> 2048x2999); the epsilon keeps
    # 0.29 * 100 at 29, not 28.
    return max(1, int(width * factor + 1e-6)), max(1, int(height * factor + 1e-6))


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """8-bit input unchanged; other depths stretched by their own min..max to 0..255."""
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip((arr - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Round an 8-bit-range float image to uint8, in place where possible."""
    arr += 0.5
    np.clip(arr, 0, 255, out=arr)
    return arr.astype(np.uint8)


def _resample(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Box-resample a 2-D array to (width, height), keeping float precision until the 8-bit step."""
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    return np.array(img.resize(size, Image.Resampling.BOX), dtype=np.float32)  # writable copy


@contextlib.contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Lift PIL's global decompression-bomb limit while a large file is opened.

    Only the header is read before ``_check_size`` applies read.max_source_pixels, and decoding is
    then reduced, so PIL's whole-image limit does not apply. (Global state: not thread-safe.)
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_size(path: Path, width: int, height: int, read: ReadSettings) -> tuple[int, int]:
    if width * height > read.max_source_pixels:
        raise ImageError(f"image is {width}x{height}, above read.max_source_pixels={read.max_source_pixels:,}",
                         path)
    size = working_size(width, height, read)
    if size[0] * size[1] > read.max_working_pixels:
        raise ImageError(f"working image would be {size[0]}x{size[1]}, above read.max_working_pixels="
                         f"{read.max_working_pixels:,}; lower read.working_scale", path)
    return size


def _grey_float(segment: np.ndarray) -> np.ndarray:
    """(length, width, samples) -> (length, width) float32; colour samples are averaged."""
    return segment.astype(np.float32).mean(axis=2) if segment.shape[2] > 1 else segment[..., 0].astype(np.float32)


def _block_starts(offset: int, length: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Start indices inside a segment of each k-block it touches, and those blocks' grid indices."""
    blocks = (offset + np.arange(length)) // k
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    return starts, blocks[starts]


def _check_segments(path: Path, page: tifffile.TiffPage) -> None:
    """Refuse a TIFF whose single tile or strip is itself huge (e.g. a whole image in one strip)."""
    rows = page.tilelength if page.is_tiled else min(page.rowsperstrip or page.imagelength, page.imagelength)
    cols = page.tilewidth if page.is_tiled else page.imagewidth
    nbytes = rows * cols * page.samplesperpixel * page.dtype.itemsize
    if nbytes > MAX_SEGMENT_BYTES:
        raise ImageError(f"TIFF stored in {'tiles' if page.is_tiled else 'strips'} of {nbytes / 2**20:.0f} MiB, "
                         f"above {MAX_SEGMENT_BYTES / 2**20:.0f} MiB: re-save it tiled (e.g. 1024x1024 tiles)", path)


def _read_tiff(path: Path, read: ReadSettings) -> WorkingImage:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        height, width = page.imagelength, page.imagewidth
        size = _check_size(path, width, height, read)
        _check_segments(path, page)
        k = max(1, int(width / size[0]))  # integer block-mean first, exact resample after
        grid = (-(-height // k), -(-width // k))
        sums = np.zeros(grid, dtype=np.float32)  # the only working-size buffer while reading
        # A small read buffer and one decoder keep memory at a few tiles, whatever the file size.
        for data, index, _ in page.segments(maxworkers=1, buffersize=READ_BUFFER):
            if data is None or index[0] != 0:  # absent tile (stays 0); separate planes: the first only
                continue
            y0, x0 = index[2], index[3]
            seg = _grey_float(data[0][: height - y0, : width - x0])  # edge tiles are padded
            ys, by = _block_starts(y0, seg.shape[0], k)
            xs, bx = _block_starts(x0, seg.shape[1], k)
            sums[np.ix_(by, bx)] += np.add.reduceat(np.add.reduceat(seg, ys, axis=0), xs, axis=1)
        # Every pixel lands in exactly one block, so a block's count is its height x width.
        sums /= np.diff(np.r_[0:height:k, height]).astype(np.float32)[:, None]
        sums /= np.diff(np.r_[0:width:k, width]).astype(np.float32)[None, :]
        is_8bit = page.dtype == np.uint8
    pixels = _resample(sums, size)
    del sums
    pixels = _float_to_uint8(pixels) if is_8bit else to_uint8(pixels)
    return WorkingImage(path, pixels, width, height)


def _read_pil(path: Path, read: ReadSettings) -> WorkingImage:
    with _own_pixel_limit(), Image.open(path) as img:
        width, height = img.size
        size = _check_size(path, width, height, read)
        if img.format == "JPEG":
            img.draft("L", size)  # decodes at the coarsest 1/2^n scale still >= size
        elif img.format == "JPEG2000":
            levels = int(np.log2(max(1.0, width / size[0])))
            img.reduce = levels  # type: ignore[assignment]  # PIL's Jpeg2K plugin: decode level
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img)
        else:
            arr = np.asarray(img.convert("L"))
    if arr.dtype == np.uint8 and (arr.shape[1], arr.shape[0]) == size:
        return WorkingImage(path, arr, width, height)
    pixels = _resample(arr.astype(np.float32), size)
    pixels = _float_to_uint8(pixels) if arr.dtype == np.uint8 else to_uint8(pixels)
    return WorkingImage(path, pixels, width, height)


def _read_small(path: Path, read: ReadSettings) -> WorkingImage:
    img = load_image(path, mode="L", max_pixels=min(MAX_PIXELS, read.max_source_pixels))
    width, height = img.size
    size = _check_size(path, width, height, read)
    arr = np.asarray(img)
    if (width, height) != size:
        arr = _float_to_uint8(_resample(arr.astype(np.float32), size))
    return WorkingImage(path, arr, width, height)


def _format(path: Path) -> str:
    """"tiff", "pil" (JPEG / JPEG 2000, reduced by the codec) or "small" (decoded whole)."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:3] == b"\xff\xd8\xff" or head[:4] == b"\xff\x4f\xff\x51" or head[4:12] == b"jP  \r\n\x87\n":
        return "pil"
    return "small"


def read_working_image(path: str | Path, read: ReadSettings) -> WorkingImage:
    """Decode ``path`` at working scale as 8-bit grey, or raise ImageError naming the file and why."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError("empty file (0 bytes)", path)
        kind = _format(path)
        if kind == "tiff":
            return _read_tiff(path, read)
        if kind == "pil":
            return _read_pil(path, read)
        return _read_small(path, read)
    except ImageError:
        raise
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise ImageError(f"cannot read file ({exc.strerror or exc})", path) from None
        # PIL and tifffile report truncated and corrupt data as OSError ("image file is truncated").
        raise ImageError(f"corrupt or truncated image data ({exc})", path) from None
    except UnidentifiedImageError:
        raise ImageError("not an image PIL can identify (wrong extension or corrupt header)", path) from None
    except (tifffile.TiffFileError, SyntaxError, ValueError, KeyError, IndexError) as exc:
        raise ImageError(f"corrupt or unsupported image ({type(exc).__name__}: {exc})", path) from None
