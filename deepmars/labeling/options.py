"""The ``label.py`` config, validated before any work: each mistake names the key and what it allows.

One flat config (``conf/label/label.yaml``) serves every command; each reads only its keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from deepmars.catalog.labels import ORDERS
from deepmars.errors import ConfigError

COMMANDS = ("serve", "add", "status", "disagreements", "review", "export", "import", "adduser")
EXPORT_FORMATS = ("csv", "history", "labels", "dataset", "labelstudio")
CLASS_FORMATS = ("auto", "indexed", "csv")


@dataclass(frozen=True)
class LabelOptions:
    command: str = "serve"
    queue: Path | None = None
    images: str | None = None
    posteriors: str | None = None
    model: str | None = None
    tracking_uri: str | None = None
    classes: str | None = None
    class_format: str = "auto"
    labels_per_item: int | None = None
    order: str = "random"
    seed: int = 0
    check_images: bool = True
    users: Path = Path("users.txt")
    lease_s: float = 600.0
    host: str = "127.0.0.1"
    port: int = 8100
    show_suggestion: bool = False
    cache_dir: Path = Path(".deepmars_cache/web")
    display_size: int = 1024
    format: str = "csv"
    output: Path | None = None
    image_dir: Path | None = None
    image_url: str = "/data/local-files/?d={name}"
    input: Path | None = None
    name: str | None = None
    item: int | None = None
    class_name: str | None = None


_CHOICES = {"command": COMMANDS, "order": tuple(ORDERS), "format": EXPORT_FORMATS, "class_format": CLASS_FORMATS}
_PATHS = ("queue", "users", "output", "image_dir", "input", "cache_dir")
_INTS = {"labels_per_item": 1, "seed": 0, "item": 1, "port": 1, "display_size": 64}
_BOOLS = ("check_images", "show_suggestion")
_NEEDS = {
    "serve": ("queue",), "add": ("queue",), "status": ("queue",), "disagreements": ("queue",),
    "review": ("queue", "item", "class_name", "name"),
    "export": ("queue", "output"), "import": ("queue", "input"), "adduser": ("name",),
}


def label_options(cfg: Mapping) -> LabelOptions:
    """The validated options; ``class`` in the config is ``class_name`` here (a Python keyword)."""
    values = {f.name: _value(cfg, f.name, f.default) for f in fields(LabelOptions)}
    opts = LabelOptions(**values)
    for key in _NEEDS[opts.command]:
        if getattr(opts, key) is None:
            shown = "class" if key == "class_name" else key
            raise ConfigError(f"{shown} is required for `label.py {opts.command}` (e.g. {shown}=...)")
    if opts.port > 65535:
        raise ConfigError(f"port: expected an integer from 1 to 65535, got {opts.port}")
    if opts.lease_s <= 0:
        raise ConfigError(f"lease_s: must be > 0 seconds, got {opts.lease_s}")
    if "{name}" not in opts.image_url and "{path}" not in opts.image_url:
        raise ConfigError(f"image_url: {opts.image_url!r} must contain {{name}} or {{path}}")
    return opts


def _value(cfg: Mapping, key: str, default):
    raw = cfg.get("class" if key == "class_name" else key, default)
    shown = "class" if key == "class_name" else key
    if isinstance(raw, (DictConfig, ListConfig, dict, list)):
        raise ConfigError(f"{shown}: expected a single value, got {raw!r}")
    if raw is None or raw == "":
        return default
    if key in _CHOICES:
        if raw not in _CHOICES[key]:
            raise ConfigError(f"{shown}: {raw!r} is not one of {', '.join(_CHOICES[key])}")
        return raw
    if key in _BOOLS:
        if not isinstance(raw, bool):
            raise ConfigError(f"{shown}: expected true or false, got {raw!r}")
        return raw
    if key in _INTS:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < _INTS[key]:
            raise ConfigError(f"{shown}: expected an integer >= {_INTS[key]}, got {raw!r}")
        return raw
    if key == "lease_s":
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"lease_s: expected a number of seconds, got {raw!r}")
        return float(raw)
    return Path(str(raw)) if key in _PATHS else str(raw)
