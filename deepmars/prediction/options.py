"""The ``predict.py`` config, validated before any work: each mistake names the key and what it allows.

One flat config (``conf/predict/predict.yaml``) serves four commands, so a user types
``python predict.py query class=wheel`` rather than nested keys. Its schema is
:class:`PredictConfig` (types, Enum choices, ranges; checked by :mod:`deepmars.schema`); the
functions below turn it into what each command reads:

- predict: input, model, catalog, tracking_uri, runtime, precision, batch_size, num_workers, threads,
  device, min_confidence, top_k, force, shard, engine, ray.* (engine=ray)
- query:   catalog, model (optional filter), class, min_confidence, instrument, sol, limit
- export:  the query filters, output (.csv or .parquet), table
- merge:   input (catalogs: a glob or a list), catalog (the merged output)
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from deepmars.config import DEVICE_FORMS, MODEL_FORMS, is_device
from deepmars.devices import resolve_device
from deepmars.errors import ConfigError
from deepmars.inference.runtimes import Precision, Runtime, check_device
from deepmars.prediction.inputs import Shard
from deepmars.schema import load, require


class Command(StrEnum):
    predict = "predict"
    query = "query"
    export = "export"
    merge = "merge"


class Table(StrEnum):
    predictions = "predictions"
    errors = "errors"
    runs = "runs"


COMMANDS = tuple(c.value for c in Command)
TABLES = tuple(t.value for t in Table)


class Engine(StrEnum):
    local = "local"  # this process classifies; num_workers processes decode
    ray = "ray"  # a Ray Data job (deepmars.prediction.ray_engine)
EXPORT_SUFFIXES = (".csv", ".parquet")
MERGE_INPUT = ("the shard catalogs, as a glob (input='catalog.shard-*-of-4.sqlite') "
               "or a list (input=[a.sqlite,b.sqlite])")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sol_range(value: Any) -> tuple[int, int] | None:
    """``sol=120`` (one sol) or ``sol=[100,200]`` (inclusive range); anything else is out of range."""
    if value is None:
        return None
    if _is_int(value):
        return (value, value)
    items = list(value) if isinstance(value, (list, tuple)) else []
    require(len(items) == 2 and all(_is_int(v) for v in items), "sol", value,
            "a sol (sol=120) or an inclusive range (sol=[100,200])")
    return (items[0], items[1])


@dataclass
class RayConfig:
    """``ray.*``: where the Ray Data job runs and how its work is spread (engine=ray)."""

    address: str | None = None  # an existing cluster ("auto", "ray://head:10001"); null: a local Ray
    num_cpus: int | None = None  # local Ray only: logical CPUs (null: all)
    num_gpus: int | None = None  # local Ray only: GPUs (null: all)
    workers: int = 1  # classifier actors, each holding the model once
    gpus_per_worker: Any = "auto"  # auto: 1 where the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0
    decode_cpus: float = 1.0  # CPUs reserved per decode task
    window: int = 100_000  # paths per Ray Data execution: bounds the driver's memory

    def __post_init__(self) -> None:
        for key in ("workers", "window"):
            require(_is_int(getattr(self, key)) and getattr(self, key) >= 1, key, getattr(self, key), "an integer >= 1")
        require(self.num_cpus is None or self.num_cpus >= 1, "num_cpus", self.num_cpus, "an integer >= 1 or null")
        require(self.num_gpus is None or self.num_gpus >= 0, "num_gpus", self.num_gpus, "an integer >= 0 or null")
        gpus = self.gpus_per_worker
        require(gpus == "auto" or (isinstance(gpus, (int, float)) and not isinstance(gpus, bool) and gpus >= 0),
                "gpus_per_worker", gpus, "auto or a number >= 0")
        require(self.cpus_per_worker >= 0, "cpus_per_worker", self.cpus_per_worker, "a number >= 0")
        require(self.decode_cpus > 0, "decode_cpus", self.decode_cpus, "a number > 0")


@dataclass
class PredictConfig:
    """conf/predict/predict.yaml: every key of every command, with its type and allowed values."""

    command: Command = Command.predict
    input: Any = None  # predict: a folder, glob or list file; merge: a glob or a list of catalogs
    model: str | None = None
    tracking_uri: str | None = "sqlite:///mlruns/mlflow.db"
    catalog: str = "catalog.sqlite"
    runtime: Runtime = Runtime.auto
    precision: Precision = Precision.fp32
    batch_size: int = 64
    num_workers: int = 1
    threads: int | None = 1
    min_confidence: float = 0.5
    top_k: int = 5
    force: bool = False
    shard: str | None = None
    device: str = "auto"
    engine: Engine = Engine.local
    ray: RayConfig = field(default_factory=RayConfig)
    class_name: str | None = field(default=None, metadata={"key": "class"})
    instrument: str | None = None
    sol: Any = None
    limit: int = 50
    output: str | None = None
    table: Table = Table.predictions

    def __post_init__(self) -> None:
        for key in ("batch_size", "top_k"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "an integer >= 1")
        for key in ("num_workers", "limit"):
            require(getattr(self, key) >= 0, key, getattr(self, key), "an integer >= 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "an integer >= 1 or null")
        require(0.0 <= self.min_confidence <= 1.0, "min_confidence", self.min_confidence, "a number in [0, 1]")
        require(bool(self.catalog), "catalog", self.catalog, "a file path")
        require(is_device(self.device), "device", self.device, DEVICE_FORMS)
        _sol_range(self.sol)
        Shard.parse(self.shard)
        if self.command == Command.predict:
            require(isinstance(self.input, str) and self.input != "", "input", self.input,
                    "a folder, a glob such as 'images/**/*.JPG', or a list file (e.g. python predict.py input=...)")
            require(bool(self.model), "model", self.model, MODEL_FORMS + " (e.g. python predict.py model=...)")
        if self.command == Command.export:
            suffix = Path(self.output or "").suffix.lower()
            require(bool(self.output) and suffix in EXPORT_SUFFIXES, "output", self.output,
                    "a file ending in " + " or ".join(EXPORT_SUFFIXES))
        if self.command == Command.merge:
            ok = (isinstance(self.input, str) and self.input != "") or (
                isinstance(self.input, list) and self.input and all(isinstance(p, str) for p in self.input))
            require(ok, "input", self.input, MERGE_INPUT)


def config_of(cfg: Mapping) -> PredictConfig:
    """``cfg`` (as predict.py composes it, or a plain dict) checked against :class:`PredictConfig`."""
    return load(PredictConfig, cfg)


@dataclass(frozen=True)
class PredictOptions:
    input: str
    model: str
    catalog: Path
    tracking_uri: str | None = None
    runtime: str = "torch"  # the library's default is the reference; predict.py's config says auto
    precision: str = "fp32"
    batch_size: int = 64
    num_workers: int = 1
    threads: int | None = None
    min_confidence: float = 0.5
    top_k: int = 5
    force: bool = False
    shard: Shard | None = None
    # engine=local: the device= setting resolved on this machine; engine=ray: as given, for each worker.
    device: str = "cpu"
    engine: str = "local"  # local: this process and its decode workers; ray: a Ray Data job

    def as_record(self) -> dict:
        """The options as plain values, logged in the catalog's runs table."""
        d = dict(self.__dict__)
        d["catalog"], d["shard"] = str(self.catalog), None if self.shard is None else self.shard.label
        return d


@dataclass(frozen=True)
class QueryOptions:
    catalog: Path
    model: str | None = None
    tracking_uri: str | None = None
    class_name: str | None = None
    min_confidence: float = 0.5
    instrument: str | None = None
    sol: tuple[int, int] | None = None
    limit: int = 50


@dataclass(frozen=True)
class ExportOptions:
    query: QueryOptions
    output: Path
    table: str = "predictions"


@dataclass(frozen=True)
class MergeOptions:
    inputs: list[Path]
    catalog: Path


def command_of(cfg: Mapping) -> str:
    return config_of(cfg).command.value


def predict_options(cfg: Mapping) -> PredictOptions:
    c = config_of(cfg)
    shard = Shard.parse(c.shard)
    catalog = Path(c.catalog)
    if shard is not None:
        # Each shard writes its own file, so shards never contend for one catalog's write lock.
        catalog = catalog.with_name(f"{catalog.stem}.{shard.label}{catalog.suffix}")
    # engine=ray: each worker resolves device= on its own machine; here only its form was checked.
    device = c.device if c.engine == Engine.ray else str(resolve_device(c.device, "device"))
    if device != "auto":  # engine=ray with device=auto: the engine knows whether its workers get GPUs
        check_device(c.runtime.value, device)
    return PredictOptions(
        input=c.input, model=c.model, catalog=catalog, tracking_uri=c.tracking_uri or None,
        runtime=c.runtime.value, precision=c.precision.value,
        batch_size=c.batch_size, num_workers=c.num_workers, threads=c.threads,
        min_confidence=float(c.min_confidence), top_k=c.top_k, force=c.force, shard=shard,
        device=device, engine=c.engine.value)


def query_options(cfg: Mapping) -> QueryOptions:
    c = config_of(cfg)
    return QueryOptions(
        catalog=Path(c.catalog), model=c.model or None, tracking_uri=c.tracking_uri or None,
        class_name=c.class_name or None, min_confidence=float(c.min_confidence),
        instrument=c.instrument or None, sol=_sol_range(c.sol), limit=c.limit)


def export_options(cfg: Mapping) -> ExportOptions:
    c = config_of(cfg)
    return ExportOptions(query=query_options(cfg), output=Path(c.output), table=c.table.value)


def merge_options(cfg: Mapping) -> MergeOptions:
    """The catalogs to merge: each pattern must match files (checked here, where the files are seen)."""
    c = config_of(cfg)
    patterns = [str(p) for p in c.input] if isinstance(c.input, list) else [str(c.input)]
    inputs: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(ch in pattern for ch in "*?[") else [pattern]
        if not matches or not all(Path(m).is_file() for m in matches):
            raise ConfigError(f"input: no catalog file matches {pattern!r}")
        inputs.extend(Path(m) for m in matches)
    output = Path(c.catalog)
    if any(p.resolve() == output.resolve() for p in inputs):
        raise ConfigError(f"catalog: the merge output {str(output)!r} is also one of the inputs; "
                          "merge into a new file")
    return MergeOptions(inputs=inputs, catalog=output)
