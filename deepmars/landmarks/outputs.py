"""Writing a batch as an unlabeled data set in the HiRISE v1 layout, plus box and per-image tables.

    <out>/map-proj/<source>-NNNN.jpg   227x227 grey crops
    <out>/labels-map-proj.txt          "<file> <class id>" lines, every id the placeholder (-1)
    <out>/landmarks_mp_classmap.csv    the v1 class ids to label with ("id,name")
    <out>/LABELING.txt                 how to fill the template and train on it
    <out>/landmarks.csv                one row per crop: boxes in working and source pixels, measures
    <out>/images.csv                   one row per input: status, landmark count, notes or error
    <out>/overlays/<source>.png        each image with its boxes

The placeholder is not a class id, so the data set loader refuses the labels file, naming the first
unlabeled line, until every line has a real id (or is deleted): an unlabeled crop cannot slip into
training by mistake.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType

from deepmars.catalog.paths import to_catalog_path, to_catalog_text
from deepmars.landmarks.config import LandmarkSettings
from deepmars.landmarks.crops import crop_box
from deepmars.landmarks.overlay import write_overlay
from deepmars.landmarks.pipeline import ImageLandmarks

# Class ids of the HiRISE v1 data set (its authors' labeling script); id 5 has no v1 example.
HIRISE_CLASSES = ("other", "crater", "dark dune", "slope streak", "bright dune", "impact ejecta", "edge")
IMAGE_DIR = "map-proj"
LABELS_FILE = "labels-map-proj.txt"

# Boxes: x, y, w, h in working pixels (the frame crops are cut from), src_* in source pixels.
LANDMARK_COLUMNS = ["file", "source", "id", "x", "y", "w", "h", "src_x", "src_y", "src_w", "src_h",
                    "crop_x", "crop_y", "crop_side", "area", "mean_intensity", "std_intensity", "eccentricity",
                    "salience", "scale", "working_width", "working_height", "source_width", "source_height"]
IMAGE_COLUMNS = ["source", "path", "status", "landmarks", "source_width", "source_height",
                 "working_width", "working_height", "message"]

_LABELING = """\
Unlabeled landmark crops in the HiRISE v1 layout (Wagstaff et al., Deep Mars, IAAI 2018).

To label: in {labels}, replace the placeholder {placeholder} after each file name with a class id
from landmarks_mp_classmap.csv (0 other, 1 crater, 2 dark dune, 3 slope streak, 4 bright dune,
5 impact ejecta, 6 edge), or delete the line to leave that crop out. The data set loader refuses
any line still holding {placeholder} and names it, so a forgotten crop cannot enter training.

To train on it: point the HiRISE data set config at this folder, e.g.
    python train.py dataset=hirise dataset.root={root}

{trace}
"""
_TRACE_CSV = """\
landmarks.csv traces every crop to its pixels: x, y, w, h is the landmark's box in the working
image (the frame the crops are cut from), src_* the same box in source pixels, crop_* the square
crop (box + margin; past the image edge it is padded with black)."""


def write_labeling_guide(out_dir: Path, placeholder: int, trace: str = _TRACE_CSV) -> None:
    """The class map to label with and LABELING.txt; ``trace`` says where each crop's box is recorded."""
    with open(out_dir / "landmarks_mp_classmap.csv", "w", encoding="utf-8") as f:
        f.writelines(f"{i},{name}\n" for i, name in enumerate(HIRISE_CLASSES))
    (out_dir / "LABELING.txt").write_text(_LABELING.format(
        labels=LABELS_FILE, placeholder=placeholder, root=out_dir.resolve(), trace=trace))


def update_labels_template(out_dir: Path, placeholder: int) -> int:
    """Append a placeholder line for each crop in map-proj/ that the labels file does not list yet.

    Existing lines are kept as they are, labels a person has filled in included, so incremental
    runs into one folder only ever add lines. Written to a temporary file and renamed: a crash
    leaves the old file or the new one. Returns the number of lines added.
    """
    labels = out_dir / LABELS_FILE
    lines = labels.read_text(encoding="utf-8").splitlines() if labels.is_file() else []
    listed = {line.split(maxsplit=1)[0] for line in lines if line.strip()}
    new = sorted(p.name for p in (out_dir / IMAGE_DIR).glob("*.jpg") if p.name not in listed)
    if new or not labels.is_file():
        tmp = labels.with_name(labels.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines + [f"{name} {placeholder}" for name in new]),
                       encoding="utf-8")
        tmp.replace(labels)
    return len(new)


class DatasetWriter:
    """Appends each image's crops and rows as it comes, so a long batch leaves usable output if stopped."""

    def __init__(self, out_dir: str | Path, settings: LandmarkSettings):
        self.out_dir = Path(out_dir)
        self.settings = settings
        (self.out_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
        self._labels = open(self.out_dir / LABELS_FILE, "w", encoding="utf-8")
        self._landmarks_file = open(self.out_dir / "landmarks.csv", "w", newline="", encoding="utf-8")
        self._images_file = open(self.out_dir / "images.csv", "w", newline="", encoding="utf-8")
        self._landmarks = csv.DictWriter(self._landmarks_file, LANDMARK_COLUMNS)
        self._images = csv.DictWriter(self._images_file, IMAGE_COLUMNS)
        self._landmarks.writeheader()
        self._images.writeheader()
        self._write_static()

    def _write_static(self) -> None:
        write_labeling_guide(self.out_dir, self.settings.output.placeholder_label)

    def add(self, result: ImageLandmarks) -> None:
        """Write one image's crops, label lines, box rows, overlay and summary row."""
        work = result.working
        height, width = work.pixels.shape
        for lm, data in zip(result.landmarks, result.jpegs, strict=True):
            (self.out_dir / IMAGE_DIR / lm.name).write_bytes(data)
            self._labels.write(f"{lm.name} {self.settings.output.placeholder_label}\n")
            box = crop_box(lm, self.settings.crops.margin)
            self._landmarks.writerow({**lm.as_row(), "crop_x": box.x, "crop_y": box.y, "crop_side": box.side,
                                      "working_width": width, "working_height": height,
                                      "source_width": work.source_width, "source_height": work.source_height})
        if self.settings.output.overlay:
            write_overlay(work, result.landmarks, self.out_dir / "overlays" / f"{result.source}.png",
                          self.settings.output.overlay_max_side)
        self._images.writerow({
            "source": result.source, "path": to_catalog_path(work.path), "status": "ok",
            "landmarks": len(result.landmarks), "source_width": work.source_width,
            "source_height": work.source_height, "working_width": width, "working_height": height,
            "message": to_catalog_text("; ".join(result.notes))})
        self._flush()

    def add_error(self, source: str, path: Path, message: str) -> None:
        """A failed input; its path and message written as the catalog writes paths (UTF-8 CSV)."""
        self._images.writerow({"source": to_catalog_text(source), "path": to_catalog_path(path), "status": "error",
                               "landmarks": 0, "message": to_catalog_text(message)})
        self._flush()

    def _flush(self) -> None:
        for f in (self._labels, self._landmarks_file, self._images_file):
            f.flush()

    def close(self) -> None:
        for f in (self._labels, self._landmarks_file, self._images_file):
            f.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
