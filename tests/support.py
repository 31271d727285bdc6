"""Values and pure builders the tests share: names, class lists, rows, options, bad file bytes.

Nothing here touches the disk, a process or global state, so a test module may import it at import
time (parametrize lists, expected class names). Whatever writes files, builds models or apps, or
composes configs is a fixture: tests/conftest.py and the plugins it registers from tests/fixtures/.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from deepmars.catalog import ErrorRow, PredictionRow
from deepmars.catalog.labels import ClassList, NewItem
from deepmars.labeling.order import from_probabilities
from deepmars.prediction.options import PredictOptions

REPO = ROOT = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
PREDICT_PY = REPO / "predict.py"

HIRISE_CLASSES = ["other", "crater", "dark dune", "slope streak", "bright dune", "impact ejecta", "edge"]

# ------------------------------------------------------------------------------ predict: tiny model, files
# timm's test network at a small input size: a bundle of it saves and loads in well under a second.
TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}
BUNDLE_CLASSES = ["wheel", "drill", "ground", "sky", "mahli cal target"]
MSL_METADATA = {"pattern": r"^(?P<sol>\d{4})(?P<instrument>M[LRH])", "types": {"sol": "int"}}


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels in a few dozen bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def bad_files() -> dict[str, bytes]:
    """Files that must be refused, by name: each kind of bad file predict.py must refuse."""
    rgb = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    jpeg = _encoded(Image.fromarray(rgb), "JPEG")
    corrupt = bytearray(jpeg)
    corrupt[2:40] = b"\x00" * 38  # the markers after SOI are gone
    return {
        "zero_byte.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "corrupt_header.jpg": bytes(corrupt),
        "not_an_image.png": b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n" * 20,  # a failed download
        "bomb.png": bomb_png(),
        "header_above_limit.png": bomb_png(9000, 9000),  # 81 Mpx: under PIL's own guard, over ours
    }


def convertible_files() -> dict[str, bytes]:
    """Unusual modes that are converted (not refused): CMYK, 16-bit, palette, alpha, grayscale."""
    rng = np.random.default_rng(8)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    u16 = Image.fromarray(rng.integers(0, 65536, (48, 64)).astype(np.uint16))
    rgba = Image.fromarray(rng.integers(0, 256, (48, 64, 4), dtype=np.uint8))
    return {
        "cmyk.jpg": _encoded(rgb.convert("CMYK"), "JPEG"),
        "sixteen_bit.tif": _encoded(u16, "TIFF"),
        "sixteen_bit.png": _encoded(u16, "PNG"),
        "palette.png": _encoded(rgb.convert("P"), "PNG"),
        "alpha.png": _encoded(rgba, "PNG"),
        "grayscale.JPEG": _encoded(rgb.convert("L"), "JPEG"),
    }


def options(input_path: Path, model: Path | str, catalog: Path, **kw) -> PredictOptions:
    """predict.py's options for a test run: in-process decoding, small batches, one thread."""
    kw.setdefault("num_workers", 0)
    kw.setdefault("batch_size", 8)
    kw.setdefault("threads", 1)  # 2 cores shared with other jobs: more threads only spin-wait
    return PredictOptions(input=str(input_path), model=str(model), catalog=catalog, **kw)


def prediction_row(path: str, model: str = "runs:/a", cls: str = "wheel", conf: float = 0.9, sol: int = 100,
                   instrument: str = "ML", at: str = "t1") -> PredictionRow:
    """A catalog prediction row with the fields queries filter on."""
    return PredictionRow(model, path, "sha-" + path, 10, 1, 4, 3, sol, instrument, None, "{}", cls, conf, "[]",
                         int(conf < 0.5), at)


def error_row(path: str, model: str = "runs:/a", reason: str = "empty file (0 bytes)", at: str = "t2") -> ErrorRow:
    return ErrorRow(model, path, None, 0, 1, reason, at)


# --------------------------------------------------------------------------- landmarks: known disc scenes
LANDMARK_CLASSES = ["other", "crater", "dark dune", "slope streak", "bright dune", "edge"]
BRIGHT, DARK = 200, 40
# Scene name -> discs (row, column, radius, grey): A holds 3 bright and 1 dark, B 1 bright and 2 dark.
DISC_SCENES = {"ESP_000001_1000_RED": [(100, 100, 20, BRIGHT), (100, 400, 16, BRIGHT), (300, 250, 22, BRIGHT),
                                       (400, 80, 18, DARK)],
               "ESP_000002_1000_RED": [(120, 300, 20, BRIGHT), (350, 120, 18, DARK), (380, 400, 24, DARK)]}
A, B = DISC_SCENES

# ----------------------------------------------------------------------------------- label store items
QUEUE_CLASSES = ClassList(((0, "other"), (1, "crater"), (2, "dark dune")), "test")


def item(i: int, probs=None) -> NewItem:
    """The ``i``-th queue item; with ``probs`` (over QUEUE_CLASSES) it carries a model's posteriors."""
    path = f"/images/img{i:03d}.jpg"
    if probs is None:
        return NewItem(path, f"img{i:03d}.jpg", "/images", i / 100)
    u = from_probabilities(probs)
    ranked = sorted(zip(QUEUE_CLASSES.names, probs, strict=True), key=lambda x: -x[1])
    top = json.dumps([{"class": n, "p": p} for n, p in ranked])
    return NewItem(path, f"img{i:03d}.jpg", "/images", i / 100, "m1", QUEUE_CLASSES.names[probs.index(max(probs))],
                   u.confidence, u.margin, u.entropy, top)


# ------------------------------------------------------------------------------ the web apps' test data
# Names with markup and quotes prove the pages show them as text.
ATLAS_HOSTILE = "<script>alert(1)</script>"
MSL_MODEL, HIRISE_MODEL = "runs:/msl0000", "runs:/hirise00"
ATLAS_MSL_CLASSES = ["apxs", "drill holes", "ground", "wheel", ATLAS_HOSTILE]
N_MSL = 48
ATLAS_SCENES = ["ESP_000001_1000_RED", "ESP_000002_1000_RED", "PSP_000003_1000_RED"]

LABEL_HOSTILE = '<img src=x onerror="alert(1)">'
LABEL_CLASS_NAMES = ["other", "crater", "dark dune", LABEL_HOSTILE]
