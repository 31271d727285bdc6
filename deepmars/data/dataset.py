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
    LabelLine, check_duplicates, check_images_exist, read_class_file, read_label_file,
)
from deepmars.data.metadata import check_metadata_spec, parse_metadata
from deepmars.errors import ConfigError, DataError


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


def _classes(cfg: Mapping, root: Path) -> tuple[dict[int, str], list[Path]]:
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


def load_dataset(cfg: Mapping, root: Path) -> LabeledDataset:
    """Read the label files named in ``cfg.labels`` under ``root``; validate every line."""
    labels = cfg.get("labels") or {}
    if not labels:
        raise ConfigError(f"dataset {cfg.get('name')!r}: dataset.labels names no label file")
    check_metadata_spec(cfg.get("metadata"))
    classes, class_files = _classes(cfg, root)
    image_dir = root / (cfg.get("image_dir") or ".")
    if not image_dir.is_dir():
        raise DataError("image folder not found", image_dir)
    lines_by_origin: dict[str, list[LabelLine]] = {}
    for origin, rel in labels.items():
        lines_by_origin[str(origin)] = read_label_file(root / rel, set(classes))
    all_lines = [ln for lines in lines_by_origin.values() for ln in lines]
    check_duplicates(all_lines)
    check_images_exist(all_lines, image_dir)
    used = {ln.class_id for ln in all_lines}
    keep = [c for c in sorted(classes) if c in used or not cfg.get("drop_empty_classes", True)]
    index = {c: i for i, c in enumerate(keep)}
    spec = _plain(cfg.get("metadata"))
    samples = [
        Sample(ln.name, image_dir / ln.name, ln.class_id, index[ln.class_id], origin,
               parse_metadata(ln.name, spec))
        for origin, lines in lines_by_origin.items() for ln in lines
    ]
    samples = _where(samples, _plain(cfg.get("where")), str(cfg.get("name")))
    label_files = [root / rel for rel in labels.values()]
    return LabeledDataset(
        name=str(cfg["name"]), version=str(cfg.get("version", "")), root=root,
        class_ids=keep, class_names=[classes[c] for c in keep], samples=samples,
        dropped_classes={c: n for c, n in classes.items() if c not in index},
        labels_sha256=_digest(class_files + label_files),
        metadata_spec={"pattern": spec.get("pattern"), "types": dict(spec.get("types") or {})},
    )
