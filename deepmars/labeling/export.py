"""Exports of a label queue: CSV for people, label files in the data set's own format for train.py.

Only decided labels are written (see ``deepmars.catalog.labels``): disagreements wait for review
and are counted, never guessed. A queue has one class list, so an export cannot mix two.

- ``csv``: item id, path, name, class id and name, who labeled it;
- ``history``: every event (labels, Later, reviews, undone ones included) with user and time;
- ``labels``: ``<image> <class id>`` lines, images relative to ``image_dir`` (default: the folder
  the queue's images are named from). Add it to a data set as one more label source, images
  referenced where they are (see docs/labeling.md):
  ``labels: {train: [train-calibrated-shuffled.txt, {file: /path/new-batch.txt, image_dir: /path/images}]}``;
- ``dataset``: a folder in the data set's layout (its labels file, its class file, its image
  folder holding links to the images, not copies) that ``train.py dataset=<name> dataset.root=<folder>``
  trains on directly; for data sets with a single labels file, like HiRISE's.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deepmars.catalog.labels import Decided, LabelStore
from deepmars.catalog.paths import existing_fs_path, to_catalog_path, to_fs_path
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError, DataError

EXPORT_MARKER = ".deepmars-label-export"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    written: int
    disagreements: int
    note: str = ""


def _decided(store: LabelStore) -> list[Decided]:
    rows = store.decided()
    if not rows:
        raise DataError("no decided labels to export yet (label some images first; disagreements wait for review)",
                        store.path)
    return rows


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(header: list[str], rows: list[tuple]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def export_csv(store: LabelStore, output: Path) -> ExportResult:
    rows = _decided(store)
    _atomic_text(output, _csv_text(["item_id", "path", "name", "class_id", "class", "users"],
                                   [(r.item_id, r.path, r.name, r.class_id, r.class_name, r.users) for r in rows]))
    return ExportResult(output, len(rows), len(store.disagreements()))


def export_history(store: LabelStore, output: Path) -> ExportResult:
    events = store.history()
    paths = {i.item_id: i.path for i in store.items()}
    _atomic_text(output, _csv_text(
        ["event_id", "item_id", "path", "user", "action", "class_id", "class", "source", "created_at", "undone_at"],
        [(e.event_id, e.item_id, paths[e.item_id], e.user, e.action, e.class_id, e.class_name, e.source,
          e.created_at, e.undone_at) for e in events]))
    return ExportResult(output, len(events), len(store.disagreements()))


def label_lines(rows: list[Decided], image_dir: Path) -> list[str]:
    """``<image relative to image_dir> <class id>`` lines; an image outside image_dir is an error."""
    lines, outside = [], []
    for r in rows:
        try:
            rel = Path(existing_fs_path(r.path)).resolve().relative_to(image_dir.resolve())
        except ValueError:
            outside.append(r.path)
            continue
        lines.append(f"{to_catalog_path(rel.as_posix())} {r.class_id}\n")
    if outside:
        raise ConfigError(f"image_dir: {len(outside)} labeled images are not under {image_dir}, e.g. "
                          f"{outside[0]}; give a folder that holds them all")
    return lines


def common_root(rows: list[Decided]) -> Path:
    roots = {r.image_root for r in rows}
    return Path(roots.pop() if len(roots) == 1 else os.path.commonpath([os.path.dirname(r.path) for r in rows]))


def export_labels(store: LabelStore, output: Path, image_dir: Path | None = None) -> ExportResult:
    rows = _decided(store)
    folder = Path(image_dir) if image_dir is not None else common_root(rows)
    _atomic_text(output, "".join(label_lines(rows, folder)))
    note = (f"add it to a data set as a label source, e.g. in its YAML:\n"
            f"  labels: {{train: [<its train file>, {{file: {output.resolve()}, image_dir: {folder.resolve()}}}]}}\n"
            f"(or a plain path when {folder.resolve()} is the data set's own image folder)")
    return ExportResult(output, len(rows), len(store.disagreements()), note)


def export_dataset(store: LabelStore, output: Path, dataset_cfg: Mapping) -> ExportResult:
    """A data set folder of ``dataset_cfg``'s layout: labels file, class file, links to the images."""
    labels = dataset_cfg.get("labels") or {}
    if len(labels) != 1 or not isinstance(next(iter(labels.values())), str):
        raise ConfigError(f"format=dataset: data set {dataset_cfg.get('name')!r} reads {len(labels)} label files; "
                          "the dataset export writes single-file layouts (as HiRISE's). Use format=labels and "
                          "add the file as a label source of the data set (docs/labeling.md)")
    rows = _decided(store)
    _check_output_folder(output)
    image_dir = output / str(dataset_cfg.get("image_dir") or ".")
    image_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rows:
        link = image_dir / to_fs_path(r.name)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(existing_fs_path(r.path)).resolve())
        lines.append(f"{r.name} {r.class_id}\n")
    class_file = (dataset_cfg.get("classes") or {}).get("file")
    if class_file:
        shutil.copyfile(resolve_root(dataset_cfg, download=False) / str(class_file), output / str(class_file))
    _atomic_text(output / str(next(iter(labels.values()))), "".join(lines))
    (output / EXPORT_MARKER).write_text(f"exported from the label queue {store.path.resolve()}\n", encoding="utf-8")
    note = f"train on it: python train.py dataset={dataset_cfg.get('name')} dataset.root={output.resolve()}"
    return ExportResult(output, len(rows), len(store.disagreements()), note)


def _check_output_folder(output: Path) -> None:
    """Write only into a new folder or an earlier export: never over a data set or landmarks output."""
    if output.exists() and any(output.iterdir()) and not (output / EXPORT_MARKER).is_file():
        raise ConfigError(f"output: {output} is a folder that is not an earlier label export; "
                          "give a new folder (the images are linked, not copied)")
