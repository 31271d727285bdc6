"""A small catalog in the real schema for the Atlas tests: MSL-like images, HiRISE crops and scenes.

Rows are written through the catalog's own stores (as predict.py and landmarks.py write them), and
every path names a real tiny image, so thumbnails, scenes and crops are served from real files.
Names include hostile ones (markup, quotes) to prove they are shown as text.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from deepmars.catalog import Catalog, LandmarkCountRow, LandmarkImageRow, LandmarkRow, ModelInfo, PredictionRow
from deepmars.catalog.landmarks import LandmarkStore
from deepmars.catalog.predictions import PredictionStore

HOSTILE = "<script>alert(1)</script>"
MSL_MODEL, HIRISE_MODEL = "runs:/msl0000", "runs:/hirise00"
MSL_CLASSES = ["apxs", "drill holes", "ground", "wheel", HOSTILE]
HIRISE_CLASSES = ["other", "crater", "dark dune", "slope streak", "bright dune", "impact ejecta", "edge"]
INSTRUMENTS = ["ML", "MR", "MH"]
N_MSL = 48
SCENES = ["ESP_000001_1000_RED", "ESP_000002_1000_RED", "PSP_000003_1000_RED"]
# Scene -> landmark boxes (x, y, w, h, class, confidence) in working pixels (scenes are 400x300).
BOXES = {
    SCENES[0]: [(20, 20, 60, 60, "crater", 0.97), (150, 40, 50, 50, "crater", 0.95), (250, 150, 70, 60, "crater", 0.92),
                (60, 200, 40, 40, "dark dune", 0.8)],
    SCENES[1]: [(40, 60, 50, 50, "crater", 0.91), (200, 100, 80, 60, "dark dune", 0.96),
                (300, 200, 60, 60, "dark dune", 0.93)],
    SCENES[2]: [(100, 100, 40, 40, "other", 0.99)],
}


def _jpeg(path: Path, shade: int, size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (shade, 255 - shade, (shade * 7) % 256)).save(path, "JPEG")
    return path


def msl_rows(folder: Path) -> list[PredictionRow]:
    rows = []
    for i in range(N_MSL):
        inst = INSTRUMENTS[i % 3]
        name = f"{i * 9:04d}{inst}{i:016d}E01_DRCL.JPG" if i != 7 else f"{HOSTILE}'\".JPG"
        path = _jpeg(folder / name, shade=5 * i)
        cls = MSL_CLASSES[i % len(MSL_CLASSES)]
        conf = [0.97, 0.91, 0.86, 0.72, 0.55, 0.35][i % 6]
        top_k = json.dumps([{"class": cls, "p": conf}, {"class": "ground" if cls != "ground" else "wheel",
                                                         "p": round(1 - conf, 4)}])
        rows.append(PredictionRow(MSL_MODEL, str(path), f"{i:064x}", path.stat().st_size, 1, 64, 48, i * 9, inst,
                                  None, json.dumps({"site": HOSTILE if i == 7 else f"site{i % 4}"}), cls, conf,
                                  top_k, int(conf < 0.5), "2024-01-01T00:00:00Z"))
    return rows


def crop_rows(folder: Path) -> list[PredictionRow]:
    rows = []
    for i in range(12):
        source = SCENES[i % 2]
        path = _jpeg(folder / f"{source}-{i + 1:04d}.jpg", shade=20 * i, size=(227, 227))
        cls = HIRISE_CLASSES[i % 5]
        rows.append(PredictionRow(HIRISE_MODEL, str(path), f"c{i:063x}", path.stat().st_size, 1, 227, 227, None, None,
                                  source, "{}", cls, 0.6 + 0.03 * i, json.dumps([{"class": cls, "p": 0.6 + 0.03 * i}]),
                                  0, "2024-01-02T00:00:00Z"))
    return rows


def write_scene(folder: Path, name: str) -> Path:
    path = folder / f"{name}.browse.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("L", (400, 300), 90)
    draw = ImageDraw.Draw(image)
    for x, y, w, h, _, _ in BOXES[name]:
        draw.ellipse((x, y, x + w, y + h), fill=200)
    image.save(path)
    return path


def scene_rows(folder: Path, k: int, name: str):
    path = write_scene(folder, name)
    sha = f"s{k:063x}"
    marks = [LandmarkRow(HIRISE_MODEL, sha, j + 1, name, None, x, y, w, h, x, y, w, h, w * h, 1.0, cls, conf,
                         json.dumps([{"class": cls, "p": conf}]), 0, "2024-01-03T00:00:00Z")
             for j, (x, y, w, h, cls, conf) in enumerate(BOXES[name])]
    counts = {c: 0 for c in HIRISE_CLASSES}
    for m in marks:
        counts[m.predicted_class] += m.confidence >= 0.9
    image = LandmarkImageRow(HIRISE_MODEL, sha, name, str(path), path.stat().st_size, 1, 400, 300, 400, 300,
                             len(marks), "", json.dumps({"read": {"working_scale": 1.0}}), None,
                             "2024-01-03T00:00:00Z")
    return image, marks, [LandmarkCountRow(HIRISE_MODEL, sha, 0.9, c, name, n) for c, n in counts.items()]


def make_atlas_catalog(root: Path) -> Path:
    """The catalog file, with its images under ``root/images``."""
    catalog = root / "atlas.sqlite"
    with Catalog.open(catalog) as cat:
        cat.register_model(ModelInfo(MSL_MODEL, MSL_CLASSES, "msl", 1.0, {}, {}))
        cat.register_model(ModelInfo(HIRISE_MODEL, HIRISE_CLASSES, "hirise", 1.0, {}, {}))
        PredictionStore(cat, MSL_MODEL).write_batch(msl_rows(root / "images" / "msl"), [])
        PredictionStore(cat, HIRISE_MODEL).write_batch(crop_rows(root / "images" / "crops"), [])
        store = LandmarkStore(cat, HIRISE_MODEL)
        for k, name in enumerate(SCENES):
            store.write_image(*scene_rows(root / "images" / "scenes", k, name))
    return catalog
