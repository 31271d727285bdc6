"""conf/atlas/atlas.yaml: its schema (``AtlasConfig``, checked by ``deepmars.schema``) and the options
the Atlas runs with. Every mistake names the key, what was given and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from deepmars.schema import load, require
from deepmars.web.settings import WebSettings


class Command(StrEnum):
    serve = "serve"
    upgrade = "upgrade"


COMMANDS = tuple(c.value for c in Command)


@dataclass
class AtlasConfig:
    """conf/atlas/atlas.yaml (with conf/atlas/synonyms.yaml): every key, its type and allowed values."""

    command: Command = Command.serve
    catalog: str = "catalog.sqlite"
    host: str = "127.0.0.1"
    port: int = 8000
    page_size: int = 60
    count_confidence: float = 0.9
    cache_dir: str = ".deepmars_cache/web"
    thumbnail_size: int = 256
    display_size: int = 1600
    image_roots: list[str] = field(default_factory=list)
    lock_timeout_s: float = 5.0
    connections: int = 8
    demo: bool = False
    demo_catalog: str = "atlas_demo/catalog.sqlite"
    demo_model: str | None = None
    tracking_uri: str | None = "sqlite:///mlruns/mlflow.db"
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, lo, hi in (("port", 1, 65535), ("page_size", 1, 500), ("thumbnail_size", 32, 1024),
                            ("display_size", 256, 8192), ("connections", 1, 64)):
            value = getattr(self, key)
            require(lo <= value <= hi, key, value, f"an integer from {lo} to {hi}")
        require(0.0 <= self.count_confidence <= 1.0, "count_confidence", self.count_confidence, "a number in [0, 1]")
        require(0.0 <= self.lock_timeout_s <= 3600, "lock_timeout_s", self.lock_timeout_s, "seconds from 0 to 3600")
        for key in ("catalog", "host", "cache_dir", "demo_catalog"):
            require(bool(getattr(self, key)), key, getattr(self, key), "a non-empty value")
        for root in self.image_roots:
            require(Path(root).is_dir(), "image_roots", root, "existing folders")


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
    c = load(AtlasConfig, cfg)
    web = WebSettings(
        catalog=Path(c.demo_catalog if c.demo else c.catalog), host=c.host, port=c.port, cache_dir=Path(c.cache_dir),
        thumbnail_size=c.thumbnail_size, display_size=c.display_size,
        image_roots=tuple(Path(r) for r in c.image_roots), lock_timeout_s=float(c.lock_timeout_s),
        connections=c.connections)
    return AtlasOptions(web=web, command=c.command.value, page_size=c.page_size,
                        count_confidence=float(c.count_confidence),
                        synonyms={str(k): tuple(str(w) for w in v) for k, v in c.synonyms.items()}, demo=c.demo,
                        demo_model=c.demo_model or None, tracking_uri=c.tracking_uri or None)
