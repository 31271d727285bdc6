"""conf/atlas/atlas.yaml validated into AtlasOptions: each mistake names the key and what it allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deepmars.errors import ConfigError
from deepmars.web.settings import WebSettings

COMMANDS = ("serve", "upgrade")


@dataclass(frozen=True)
class AtlasOptions:
    web: WebSettings
    command: str = "serve"
    page_size: int = 60
    count_confidence: float = 0.9
    synonyms: dict[str, tuple[str, ...]] | None = None
    demo: bool = False
    demo_model: str | None = None
    tracking_uri: str | None = None


def atlas_options(cfg: Mapping) -> AtlasOptions:
    command = cfg.get("command", "serve")
    if command not in COMMANDS:
        raise ConfigError(f"command: {command!r} is not one of {', '.join(COMMANDS)}")
    demo = _bool(cfg, "demo")
    catalog = Path(_text(cfg, "demo_catalog" if demo else "catalog"))
    web = WebSettings(
        catalog=catalog, host=_text(cfg, "host"), port=_int(cfg, "port", 1, 65535),
        cache_dir=Path(_text(cfg, "cache_dir")), thumbnail_size=_int(cfg, "thumbnail_size", 32, 1024),
        display_size=_int(cfg, "display_size", 256, 8192), image_roots=_paths(cfg, "image_roots"),
        lock_timeout_s=_number(cfg, "lock_timeout_s", 0.0, 3600.0), connections=_int(cfg, "connections", 1, 64))
    return AtlasOptions(web=web, command=command, page_size=_int(cfg, "page_size", 1, 500),
                        count_confidence=_number(cfg, "count_confidence", 0.0, 1.0), synonyms=_synonyms(cfg),
                        demo=demo, demo_model=_optional_text(cfg, "demo_model"),
                        tracking_uri=_optional_text(cfg, "tracking_uri"))


def _optional_text(cfg: Mapping, key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfigError(f"{key}: expected a single value, got {value!r}")
    return str(value)


def _text(cfg: Mapping, key: str) -> str:
    value = _optional_text(cfg, key)
    if value is None:
        raise ConfigError(f"{key} is required (e.g. python atlas.py {key}=...)")
    return value


def _int(cfg: Mapping, key: str, lo: int, hi: int) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected an integer from {lo} to {hi}, got {value!r}")
    return value


def _number(cfg: Mapping, key: str, lo: float, hi: float) -> float:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def _bool(cfg: Mapping, key: str) -> bool:
    value = cfg.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _paths(cfg: Mapping, key: str) -> tuple[Path, ...]:
    value = cfg.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) and not hasattr(value, "__iter__"):
        raise ConfigError(f"{key}: expected a list of folders, got {value!r}")
    paths = tuple(Path(str(v)) for v in value)
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"{key}: {str(path)!r} is not a folder")
    return paths


def _synonyms(cfg: Mapping) -> dict[str, tuple[str, ...]]:
    value = cfg.get("synonyms") or {}
    if not hasattr(value, "items"):
        raise ConfigError(f"synonyms: expected a mapping class: [words], got {value!r}")
    out = {}
    for name, words in value.items():
        if isinstance(words, str) or not hasattr(words, "__iter__"):
            raise ConfigError(f"synonyms.{name}: expected a list of words, got {words!r}")
        out[str(name)] = tuple(str(w) for w in words)
    return out
