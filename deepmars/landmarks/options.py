"""The ``classify`` and ``query`` options of ``landmarks.py``, from its validated config.

One flat config (``conf/landmarks/landmarks.yaml``, schema :class:`~deepmars.landmarks.config.LandmarksConfig`)
serves the three commands, as predict.py's does; each command reads only its keys:

- detect:   input, output_dir, read/detect/crops/output (``config.settings_from_config``)
- classify: those detector sections, input, model, catalog, tracking_uri, runtime, precision,
  batch_size, threads, device, min_confidence, count_confidence, top_k, force, crops_dir
- query:    catalog, model (optional), tracking_uri, class, min_count, count_confidence, limit, csv
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmars.devices import resolve_device
from deepmars.inference.runtimes import check_device
from deepmars.landmarks.config import Command, config_of

COMMANDS = tuple(c.value for c in Command)


@dataclass(frozen=True)
class ClassifyOptions:
    """What a classify run needs besides the detector settings."""

    input: str | tuple[str, ...]
    model: str
    catalog: Path
    tracking_uri: str | None = None
    runtime: str = "torch"  # the library's default is the reference; landmarks.py's config says auto
    precision: str = "fp32"
    batch_size: int = 64
    threads: int | None = 1
    min_confidence: float = 0.5
    count_confidence: float = 0.9
    top_k: int = 5
    force: bool = False
    crops_dir: Path | None = None
    device: str = "cpu"  # resolved from device= (auto, cpu, cuda, cuda:N)

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
    return config_of(cfg).command.value


def _path(value: str | None) -> Path | None:
    return None if not value else Path(value)


def classify_options(cfg: Mapping[str, Any]) -> ClassifyOptions:
    c = config_of(cfg)
    device = str(resolve_device(c.device, "device"))
    check_device(c.runtime.value, device)
    return ClassifyOptions(
        input=tuple(c.input) if isinstance(c.input, list) else c.input, model=c.model,
        catalog=Path(c.catalog), tracking_uri=c.tracking_uri or None, runtime=c.runtime.value,
        precision=c.precision.value, batch_size=c.batch_size,
        threads=c.threads, min_confidence=float(c.min_confidence), count_confidence=float(c.count_confidence),
        top_k=c.top_k, force=c.force, crops_dir=_path(c.crops_dir),
        device=device)


def query_options(cfg: Mapping[str, Any]) -> CountQueryOptions:
    c = config_of(cfg)
    return CountQueryOptions(
        catalog=Path(c.catalog), model=c.model or None, tracking_uri=c.tracking_uri or None,
        class_name=c.class_name or None, min_count=c.min_count, count_confidence=float(c.count_confidence),
        limit=c.limit, csv_path=_path(c.csv))
