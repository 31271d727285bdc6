"""Shared builders for the predict tests (no tests here): tiny images, bad files, a tiny model.

Images are written in the MSL naming layout (``<sol><instrument>...``) so name metadata is
exercised; every kind of bad file predict.py must refuse has a writer; the model is timm's test_efficientnet.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from PIL import Image

from deepmars.catalog import TIME_COLUMNS, Catalog, ErrorRow, PredictionRow
from deepmars.catalog.predictions import PredictionStore
from deepmars.models.bundle import ModelBundle
from deepmars.config import ModelConfig
from deepmars.models.factory import build_model
from deepmars.schema import load
from deepmars.prediction.options import PredictOptions

ROOT = Path(__file__).resolve().parents[1]
PREDICT_PY = ROOT / "predict.py"
CONF_DIR = ROOT / "conf" / "predict"
TINY = {"source": "timm", "name": "test_efficientnet", "pretrained": "none", "img_size": 64, "resize": 72}
CLASSES = ["wheel", "drill", "ground", "sky", "mahli cal target"]
MSL_METADATA = {"pattern": r"^(?P<sol>\d{4})(?P<instrument>M[LRH])", "types": {"sol": "int"}}


def tiny_bundle(path: Path, seed: int = 0, temperature: float = 1.5) -> Path:
    """A saved bundle of the tiny test network; a different seed gives different weights."""
    import torch

    torch.manual_seed(seed)
    model, preprocess = build_model(load(ModelConfig, TINY), len(CLASSES), load_pretrained=False)
    bundle = ModelBundle(model=model, model_cfg=TINY, class_names=CLASSES, preprocess=preprocess,
                         temperature=temperature, dataset={"name": "msl", "metadata": MSL_METADATA})
    return bundle.save(path)


def msl_name(i: int, suffix: str = ".JPG") -> str:
    instrument = ("ML", "MR", "MH")[i % 3]
    return f"{100 + i % 50:04d}{instrument}{i:010d}E01_DRCL{suffix}"


def write_images(folder: Path, n: int, start: int = 0, size: tuple[int, int] = (40, 30),
                 nested: bool = True) -> list[Path]:
    """``n`` distinct small RGB JPEGs with MSL names; every third in a sub-folder."""
    paths = []
    for i in range(start, start + n):
        sub = folder / f"sol{i % 4}" if nested and i % 3 == 0 else folder
        sub.mkdir(parents=True, exist_ok=True)
        rgb = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = sub / msl_name(i)
        Image.fromarray(rgb).save(path, quality=90)
        paths.append(path)
    return paths


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


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def options(input_path: Path, model: Path | str, catalog: Path, **kw) -> PredictOptions:
    kw.setdefault("num_workers", 0)
    kw.setdefault("batch_size", 8)
    kw.setdefault("threads", 1)  # 2 cores shared with other jobs: more threads only spin-wait
    return PredictOptions(input=str(input_path), model=str(model), catalog=catalog, **kw)


def predict_config(*overrides: str):
    """``conf/predict/predict.yaml`` composed with overrides, as predict.py would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="predict", overrides=list(overrides))


def run_predict_py(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess (its exit code is part of the interface)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(PREDICT_PY), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def prediction_row(path: str, model: str = "runs:/a", cls: str = "wheel", conf: float = 0.9, sol: int = 100,
                   instrument: str = "ML", at: str = "t1") -> PredictionRow:
    """A catalog prediction row with the fields queries filter on."""
    return PredictionRow(model, path, "sha-" + path, 10, 1, 4, 3, sol, instrument, None, "{}", cls, conf, "[]",
                         int(conf < 0.5), at)


def error_row(path: str, model: str = "runs:/a", reason: str = "empty file (0 bytes)", at: str = "t2") -> ErrorRow:
    return ErrorRow(model, path, None, 0, 1, reason, at)


def write_batch(catalog: Catalog, predictions: list[PredictionRow], errors: list[ErrorRow]) -> None:
    """One predict batch (rows of any models) written as predict.py writes it."""
    PredictionStore(catalog, "any").write_batch(predictions, errors)


def table_rows(catalog_path: Path, table: str) -> list[tuple]:
    """A table's rows without timestamps, sorted: what 'the same catalog' means in these tests."""
    with Catalog.open(catalog_path, create=False) as catalog:
        return catalog.rows(table, exclude=TIME_COLUMNS.values())
