"""Metadata parsed from file names, defined per data set in YAML (a regex with named groups).

MSL names carry the sol and instrument (``0003ML...``), HiRISE crops their source image
(``ESP_011623_2100_RED-0069.jpg``). Keeping the rule in config lets a new data set of the same
family bring its own without code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import PurePath

from deepmars.errors import ConfigError

_CASTS = {"int": int, "str": str, "float": float}


@lru_cache(maxsize=32)
def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"dataset.metadata.pattern {pattern!r} is not a valid regex: {exc}") from None


def check_metadata_spec(spec: Mapping | None) -> None:
    """Fail at load, not mid-run, on a bad pattern or type name."""
    if not spec or not spec.get("pattern"):
        return
    rx = _compile(spec["pattern"])
    for key, type_name in (spec.get("types") or {}).items():
        if type_name not in _CASTS:
            raise ConfigError(f"dataset.metadata.types.{key}: {type_name!r} is not one of {sorted(_CASTS)}")
        if key not in rx.groupindex:
            raise ConfigError(f"dataset.metadata.types.{key}: the pattern has no group named {key!r}")


def parse_metadata(name: str, spec: Mapping | None) -> dict:
    """Fields of ``name`` (its base name is matched) per ``spec`` = {pattern, types}; {} if no match."""
    if not spec or not spec.get("pattern"):
        return {}
    m = _compile(spec["pattern"]).search(PurePath(name).name)
    if m is None:
        return {}
    types = spec.get("types") or {}
    out = {}
    for key, value in m.groupdict().items():
        if value is not None:
            out[key] = _CASTS[types.get(key, "str")](value)
    return out
