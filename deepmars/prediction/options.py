"""The ``predict.py`` config, validated before any work: each mistake names the key and what it allows.

One flat config (``conf/predict/predict.yaml``) serves four commands, so a user types
``python predict.py query class=wheel`` rather than nested keys. Each command reads only its keys:

- predict: input, model, catalog, tracking_uri, batch_size, num_workers, threads, min_confidence,
  top_k, force, shard
- query:   catalog, model (optional filter), class, min_confidence, instrument, sol, limit
- export:  the query filters, output (.csv or .parquet), table
- merge:   input (catalogs: a glob or a list), catalog (the merged output)
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from deepmars.errors import ConfigError
from deepmars.prediction.inputs import Shard

COMMANDS = ("predict", "query", "export", "merge")
TABLES = ("predictions", "errors", "runs")
EXPORT_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class PredictOptions:
    input: str
    model: str
    catalog: Path
    tracking_uri: str | None = None
    batch_size: int = 64
    num_workers: int = 1
    threads: int | None = None
    min_confidence: float = 0.5
    top_k: int = 5
    force: bool = False
    shard: Shard | None = None

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
    return _choice(cfg, "command", COMMANDS)


def predict_options(cfg: Mapping) -> PredictOptions:
    shard = Shard.parse(_optional_str(cfg, "shard"))
    catalog = _path(cfg, "catalog")
    if shard is not None:
        # Each shard writes its own file, so shards never contend for one catalog's write lock.
        catalog = catalog.with_name(f"{catalog.stem}.{shard.label}{catalog.suffix}")
    return PredictOptions(
        input=_required_str(cfg, "input", "a folder, a glob such as 'images/**/*.JPG', or a list file"),
        model=_required_str(cfg, "model", "a bundle file, runs:/<run_id>, a run id, models:/<name>/<version>, "
                                          "models:/<name>@<alias> or a registered model name"),
        catalog=catalog, tracking_uri=_optional_str(cfg, "tracking_uri"),
        batch_size=_int(cfg, "batch_size", 1), num_workers=_int(cfg, "num_workers", 0),
        threads=_optional_int(cfg, "threads", 1), min_confidence=_probability(cfg, "min_confidence"),
        top_k=_int(cfg, "top_k", 1), force=_bool(cfg, "force"), shard=shard)


def query_options(cfg: Mapping) -> QueryOptions:
    return QueryOptions(
        catalog=_path(cfg, "catalog"), model=_optional_str(cfg, "model"),
        tracking_uri=_optional_str(cfg, "tracking_uri"), class_name=_optional_str(cfg, "class"),
        min_confidence=_probability(cfg, "min_confidence"), instrument=_optional_str(cfg, "instrument"),
        sol=_sol_range(cfg.get("sol")), limit=_int(cfg, "limit", 0))


def export_options(cfg: Mapping) -> ExportOptions:
    output = Path(_required_str(cfg, "output", "a file ending in .csv or .parquet"))
    if output.suffix.lower() not in EXPORT_SUFFIXES:
        raise ConfigError(f"output: {str(output)!r} must end in one of {', '.join(EXPORT_SUFFIXES)}")
    return ExportOptions(query=query_options(cfg), output=output, table=_choice(cfg, "table", TABLES))


def merge_options(cfg: Mapping) -> MergeOptions:
    raw = cfg.get("input")
    if raw is None or raw == "":
        raise ConfigError("input is required for merge: the shard catalogs, as a glob "
                          "(input='catalog.shard-*-of-4.sqlite') or a list (input=[a.sqlite,b.sqlite])")
    patterns = [str(p) for p in raw] if isinstance(raw, (list, tuple, ListConfig)) else [str(raw)]
    inputs: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matches or not all(Path(m).is_file() for m in matches):
            raise ConfigError(f"input: no catalog file matches {pattern!r}")
        inputs.extend(Path(m) for m in matches)
    output = _path(cfg, "catalog")
    if any(p.resolve() == output.resolve() for p in inputs):
        raise ConfigError(f"catalog: the merge output {str(output)!r} is also one of the inputs; "
                          "merge into a new file")
    return MergeOptions(inputs=inputs, catalog=output)


# ------------------------------------------------------------------ value checks
def _choice(cfg: Mapping, key: str, allowed: tuple[str, ...]) -> str:
    value = cfg.get(key)
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _optional_str(cfg: Mapping, key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list, ListConfig, DictConfig)):
        raise ConfigError(f"{key}: expected a single value, got {value!r}")
    return str(value)


def _required_str(cfg: Mapping, key: str, what: str) -> str:
    value = _optional_str(cfg, key)
    if value is None:
        raise ConfigError(f"{key} is required: {what} (e.g. python predict.py {key}=...)")
    return value


def _path(cfg: Mapping, key: str) -> Path:
    return Path(_required_str(cfg, key, "a file path"))


def _int(cfg: Mapping, key: str, minimum: int) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _optional_int(cfg: Mapping, key: str, minimum: int) -> int | None:
    return None if cfg.get(key) is None else _int(cfg, key, minimum)


def _probability(cfg: Mapping, key: str) -> float:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _bool(cfg: Mapping, key: str) -> bool:
    value = cfg.get(key)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _sol_range(value) -> tuple[int, int] | None:
    """``sol=120`` (one sol) or ``sol=[100,200]`` (inclusive range)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (list, tuple, ListConfig)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return (int(value[0]), int(value[1]))
    raise ConfigError(f"sol: expected a sol (sol=120) or an inclusive range (sol=[100,200]), got {value!r}")
