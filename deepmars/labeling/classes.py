"""The class list of a label queue: from a data set YAML (the ids its label files use) or a class file.

``classes=`` takes a data set YAML (``conf/dataset/hirise.yaml``, or just ``hirise`` for one of
``conf/dataset/``), an ``<id> <name>`` class file (MSL v1's ``msl_synset_words-indexed.txt``) or an
``id,name`` CSV. Every class of the list gets a button, classes without examples included: a
person may well find the first "sun" image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

import deepmars.config  # noqa: F401 - registers ${deepmars_sample:...} used by the sample YAMLs
from deepmars.catalog.labels import ClassList
from deepmars.data.dataset import read_classes
from deepmars.data.labels import read_class_file
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError

DATASET_CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"
YAML_SUFFIXES = (".yaml", ".yml")


def load_dataset_yaml(path: Path) -> dict:
    """A data set YAML as a plain dict, its ``defaults`` list (other files of its folder) merged first."""
    node = OmegaConf.load(path)
    defaults = node.pop("defaults", None) if "defaults" in node else None
    merged = OmegaConf.create()
    for entry in defaults or []:
        if entry == "_self_":
            merged = OmegaConf.merge(merged, node)
        else:
            merged = OmegaConf.merge(merged, load_dataset_yaml(path.with_name(f"{entry}.yaml")))
    if not defaults or "_self_" not in defaults:
        merged = OmegaConf.merge(merged, node)
    return OmegaConf.to_container(merged, resolve=True)


def dataset_yaml_path(spec: str) -> Path | None:
    """The YAML ``spec`` names (a path, or a name of conf/dataset/), or None if it is not one."""
    path = Path(spec)
    if path.suffix.lower() in YAML_SUFFIXES:
        if not path.is_file():
            raise ConfigError(f"classes: data set YAML {spec!r} not found")
        return path
    if not path.exists() and "/" not in spec and (DATASET_CONF / f"{spec}.yaml").is_file():
        return DATASET_CONF / f"{spec}.yaml"
    return None


def load_class_list(spec: str, class_format: str = "auto") -> ClassList:
    """The class list ``classes=`` names; ConfigError / DataError naming the file at fault."""
    if not spec:
        raise ConfigError("classes is required: a data set YAML (e.g. conf/dataset/hirise.yaml, or hirise) "
                          "or a class file ('<id> <name>' lines, or 'id,name' CSV)")
    yaml_path = dataset_yaml_path(spec)
    if yaml_path is not None:
        return classes_of_dataset(load_dataset_yaml(yaml_path), str(yaml_path.resolve()))
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"classes: {spec!r} is neither a data set YAML, a name in conf/dataset/, nor a class file")
    fmt = ("csv" if path.suffix.lower() == ".csv" else "indexed") if class_format == "auto" else class_format
    if fmt not in ("indexed", "csv"):
        raise ConfigError(f"class_format: {class_format!r} is not one of ['auto', 'csv', 'indexed']")
    classes = read_class_file(path, fmt)
    return ClassList(tuple(sorted(classes.items())), str(path.resolve()))


def classes_of_dataset(cfg: Mapping, source: str) -> ClassList:
    """A data set config's classes, read as the data set loader reads them: its class file (found
    under the data set's root, with its CSV layout) or its inline names."""
    spec = cfg.get("classes") or {}
    root = resolve_root(cfg, download=False) if spec.get("file") else Path(".")
    classes, _ = read_classes(cfg, root)
    return ClassList(tuple(sorted(classes.items())), source)
