"""A labeled data set of the Deep Mars family, read entirely from its YAML description.

MSL v1, HiRISE v1 and any later set with a labels file (or one per split), an image folder and
a class-name list load through :func:`load_dataset`; nothing here knows which one it reads.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from deepmars.data.labels import (
    check_duplicates,
    check_images_exist,
    read_class_file,
    read_label_file,
)
from deepmars.data.metadata import check_metadata_spec, parse_metadata
from deepmars.errors import ConfigError, DataError


@dataclass(frozen=True)
class LabelSource:
    """One label file of a split, and the folder its image paths are relative to."""

    origin: str  # the split key in dataset.labels ("train", "all", ...)
    file: Path
    image_dir: Path


@dataclass(frozen=True)
class Sample:
    name: str  # as written in the label file, relative to the image folder
    path: Path
    class_id: int  # the data set's own id
    target: int  # index into LabeledDataset.class_names (the model's output)
    origin: str  # key of the label file it came from ("train", "all", ...)
    meta: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class LabeledDataset:
    name: str
    version: str
    root: Path
    class_ids: list[int]  # the data set ids the model predicts, in output order
    class_names: list[str]
    samples: list[Sample]
    dropped_classes: dict[int, str]
    labels_sha256: str  # of the label and class files: identifies exactly what was trained on
    metadata_spec: dict

    def counts(self, samples: list[Sample] | None = None) -> Counter:
        return Counter(s.target for s in (self.samples if samples is None else samples))

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "root": str(self.root),
                "labels_sha256": self.labels_sha256, "num_samples": len(self.samples),
                "class_names": list(self.class_names), "metadata": self.metadata_spec}


def read_classes(cfg: Mapping, root: Path) -> tuple[dict[int, str], list[Path]]:
    """Class id -> name of a data set config (its class file under ``root``, or its inline names),
    and the class files read."""
    spec = cfg.get("classes") or {}
    if spec.get("file"):
        path = root / spec["file"]
        fmt = spec.get("format", "indexed")
        if fmt not in ("indexed", "csv"):
            raise ConfigError(f"dataset.classes.format: {fmt!r} is not one of ['csv', 'indexed']")
        columns = spec.get("columns") or {}
        return read_class_file(path, str(fmt), header=bool(spec.get("header", False)),
                               columns=(columns.get("id", 0), columns.get("name", 1))), [path]
    names = spec.get("names")
    if not names:
        raise ConfigError(f"dataset {cfg.get('name')!r}: set dataset.classes.file or dataset.classes.names")
    names = [str(n) for n in names]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"dataset.classes.names: {repeated} listed more than once; each class needs its own name")
    return dict(enumerate(names)), []


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _plain(value) -> dict:
    """A plain dict: OmegaConf node access per image made loading the full sets 5x slower."""
    if value is None:
        return {}
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else dict(value)


def _where(samples: list[Sample], where: dict, name: str) -> list[Sample]:
    """Keep samples whose file-name metadata match ``dataset.where`` (e.g. one instrument).

    The class list is fixed before this filter, so models trained on subsets (MSLNet-inst) share
    one output layout and their posteriors can be routed per image.
    """
    if not where:
        return samples
    wanted = {field: {str(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])}
              for field, vals in where.items()}
    kept = [s for s in samples if all(str(s.meta.get(f)) in vals for f, vals in wanted.items())]
    if not kept:
        raise DataError(f"dataset.where {where} matches no image of data set {name!r}")
    return kept


def label_sources(cfg: Mapping, root: Path) -> list[LabelSource]:
    """The label files of ``cfg.labels``: per split one file, or a list of several.

    A list entry is a path (relative to the root, or absolute), or ``{file: ..., image_dir: ...}``
    for a batch whose image paths are relative to another folder (images referenced where they
    are, not copied). A plain entry's image paths are relative to the data set's ``image_dir``.
    """
    labels = _plain(cfg.get("labels"))
    if not labels:
        raise ConfigError(f"dataset {cfg.get('name')!r}: dataset.labels names no label file")
    image_dir = root / str(cfg.get("image_dir") or ".")
    out = []
    for origin, entries in labels.items():
        for i, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            key = f"dataset.labels.{origin}" + (f"[{i}]" if isinstance(entries, list) else "")
            out.append(_label_source(str(origin), entry, root, image_dir, key))
    return out


def _label_source(origin: str, entry, root: Path, image_dir: Path, key: str) -> LabelSource:
    if isinstance(entry, str) and entry:
        return LabelSource(origin, root / entry, image_dir)
    if isinstance(entry, Mapping) and isinstance(entry.get("file"), str) and entry["file"] \
            and set(entry) <= {"file", "image_dir"}:
        folder = entry.get("image_dir")
        return LabelSource(origin, root / entry["file"], image_dir if folder is None else root / str(folder))
    raise ConfigError(f"{key}: {entry!r} is not a label file: give a path (relative to the data set root, or "
                      "absolute) or {file: <path>, image_dir: <folder its image paths are relative to>}")


def load_dataset(cfg: Mapping, root: Path) -> LabeledDataset:
    """Read the label files named in ``cfg.labels`` under ``root``; validate every line."""
    sources = label_sources(cfg, root)
    check_metadata_spec(cfg.get("metadata"))
    classes, class_files = read_classes(cfg, root)
    for folder in dict.fromkeys(src.image_dir for src in sources):
        if not folder.is_dir():
            raise DataError("image folder not found", folder)
    lines_by_source = [(src, read_label_file(src.file, set(classes))) for src in sources]
    all_lines = [ln for _, lines in lines_by_source for ln in lines]
    folder_of = {src.file: src.image_dir for src in sources}
    check_duplicates(all_lines, folder_of)
    for folder in dict.fromkeys(folder_of.values()):
        check_images_exist([ln for ln in all_lines if folder_of[ln.file] == folder], folder)
    used = {ln.class_id for ln in all_lines}
    keep = [c for c in sorted(classes) if c in used or not cfg.get("drop_empty_classes", True)]
    index = {c: i for i, c in enumerate(keep)}
    spec = _plain(cfg.get("metadata"))
    samples = [
        Sample(ln.name, src.image_dir / ln.name, ln.class_id, index[ln.class_id], src.origin,
               parse_metadata(ln.name, spec))
        for src, lines in lines_by_source for ln in lines
    ]
    samples = _where(samples, _plain(cfg.get("where")), str(cfg.get("name")))
    label_files = [src.file for src in sources]
    return LabeledDataset(
        name=str(cfg["name"]), version=str(cfg.get("version", "")), root=root,
        class_ids=keep, class_names=[classes[c] for c in keep], samples=samples,
        dropped_classes={c: n for c, n in classes.items() if c not in index},
        labels_sha256=_digest(class_files + label_files),
        metadata_spec={"pattern": spec.get("pattern"), "types": dict(spec.get("types") or {})},
    )
