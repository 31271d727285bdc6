"""The ``classify`` and ``query`` settings of ``landmarks.py``, validated before any image is read.

One flat config (``conf/landmarks/landmarks.yaml``) serves the three commands, as predict.py's
does; each command reads only its keys, and every mistake names the key and what it allows:

- detect:   input, output_dir, read/detect/crops/output (``config.settings_from_config``)
- classify: those detector sections, input, model, catalog, tracking_uri, batch_size, threads,
  min_confidence, count_confidence, top_k, force, crops_dir
- query:    catalog, model (optional), tracking_uri, class, min_count, count_confidence, limit, csv
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmars.errors import ConfigError
from deepmars.landmarks.config import _bool, _float, _int

COMMANDS = ("detect", "classify", "query")
MODEL_FORMS = ("a bundle file, runs:/<run_id>, a run id, models:/<name>/<version>, models:/<name>@<alias> "
               "or a registered model name")


@dataclass(frozen=True)
class ClassifyOptions:
    """What a classify run needs besides the detector settings."""

    input: str | tuple[str, ...]
    model: str
    catalog: Path
    tracking_uri: str | None = None
    batch_size: int = 64
    threads: int | None = 1
    min_confidence: float = 0.5
    count_confidence: float = 0.9
    top_k: int = 5
    force: bool = False
    crops_dir: Path | None = None

    def as_record(self) -> dict[str, Any]:
        """Plain values, logged in the catalog's runs table."""
        record = dict(self.__dict__)
        record["input"] = list(self.input) if isinstance(self.input, tuple) else self.input
        record["catalog"] = str(self.catalog)
        record["crops_dir"] = None if self.crops_dir is None else str(self.crops_dir)
        return record


@dataclass(frozen=True)
class CountQueryOptions:
    """``landmarks.py query``: images by how many landmarks of a class they hold."""

    catalog: Path
    model: str | None = None
    tracking_uri: str | None = None
    class_name: str | None = None
    min_count: int = 1
    count_confidence: float = 0.9
    limit: int = 50
    csv_path: Path | None = None  # csv=: write every matching image there


def command_of(cfg: Mapping[str, Any]) -> str:
    value = cfg.get("command")
    if value not in COMMANDS:
        raise ConfigError(f"command: got {value!r}, allowed: {', '.join(COMMANDS)}")
    return value


def _optional_str(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
        raise ConfigError(f"{key}: got {value!r}, allowed: a single value")
    return str(value)


def _required_str(cfg: Mapping[str, Any], key: str, what: str) -> str:
    value = _optional_str(cfg, key)
    if value is None:
        raise ConfigError(f"{key}: missing, allowed: {what} (e.g. python landmarks.py classify {key}=...)")
    return value


def _input(cfg: Mapping[str, Any]) -> str | tuple[str, ...]:
    spec = cfg.get("input")
    if isinstance(spec, str) and spec not in ("", "???"):
        return spec
    if isinstance(spec, Sequence) and not isinstance(spec, str) and spec and all(isinstance(s, str) for s in spec):
        return tuple(spec)
    raise ConfigError(f"input: got {spec!r}, allowed: a file, a folder, a glob, or a list of these")


def _optional_path(cfg: Mapping[str, Any], key: str) -> Path | None:
    value = _optional_str(cfg, key)
    return None if value is None else Path(value)


def classify_options(cfg: Mapping[str, Any]) -> ClassifyOptions:
    return ClassifyOptions(
        input=_input(cfg), model=_required_str(cfg, "model", MODEL_FORMS),
        catalog=Path(_required_str(cfg, "catalog", "a catalog file path")),
        tracking_uri=_optional_str(cfg, "tracking_uri"), batch_size=_int(cfg, "", "batch_size", 1),
        threads=None if cfg.get("threads") is None else _int(cfg, "", "threads", 1),
        min_confidence=_float(cfg, "", "min_confidence", 0.0, 1.0),
        count_confidence=_float(cfg, "", "count_confidence", 0.0, 1.0),
        top_k=_int(cfg, "", "top_k", 1), force=_bool(cfg, "", "force"),
        crops_dir=_optional_path(cfg, "crops_dir"))


def query_options(cfg: Mapping[str, Any]) -> CountQueryOptions:
    output = _optional_path(cfg, "csv")
    if output is not None and output.suffix.lower() != ".csv":
        raise ConfigError(f"csv: got {str(output)!r}, allowed: a file ending in .csv")
    return CountQueryOptions(
        catalog=Path(_required_str(cfg, "catalog", "a catalog file path")), model=_optional_str(cfg, "model"),
        tracking_uri=_optional_str(cfg, "tracking_uri"), class_name=_optional_str(cfg, "class"),
        min_count=_int(cfg, "", "min_count", 0), count_confidence=_float(cfg, "", "count_confidence", 0.0, 1.0),
        limit=_int(cfg, "", "limit", 0), csv_path=output)
