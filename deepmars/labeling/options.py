"""The ``label.py`` config, validated before any work: each mistake names the key and what it allows.

One flat config (``conf/label/label.yaml``) serves every command; each reads only its keys. Its
schema is :class:`LabelConfig` (types, Enum choices, ranges; checked by :mod:`deepmars.schema`),
turned into :class:`LabelOptions` (paths as paths) for the commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from deepmars.catalog.labels import ORDERS
from deepmars.schema import load, require

# The commands (a string, not an Enum: "import" cannot be a member name).
COMMANDS = ("serve", "add", "status", "disagreements", "review", "export", "import", "adduser")


class Order(StrEnum):
    random = "random"
    least_confident = "least_confident"
    margin = "margin"
    entropy = "entropy"


assert set(Order) == set(ORDERS), "the page's orders are the label store's"


class ExportFormat(StrEnum):
    csv = "csv"
    history = "history"
    labels = "labels"
    dataset = "dataset"
    labelstudio = "labelstudio"


class ClassFormat(StrEnum):
    auto = "auto"
    indexed = "indexed"
    csv = "csv"


# The keys each command cannot do without.
_NEEDS = {"serve": ("queue",), "add": ("queue",), "status": ("queue",), "disagreements": ("queue",),
          "review": ("queue", "item", "class", "name"), "export": ("queue", "output"), "import": ("queue", "input"),
          "adduser": ("name",)}


@dataclass
class LabelConfig:
    """conf/label/label.yaml: every key of every command, with its type and allowed values."""

    command: str = "serve"
    queue: str | None = None
    images: str | None = None
    posteriors: str | None = None
    model: str | None = None
    tracking_uri: str | None = "sqlite:///mlruns/mlflow.db"
    classes: str | None = None
    class_format: ClassFormat = ClassFormat.auto
    labels_per_item: int | None = None
    order: Order = Order.random
    seed: int = 0
    check_images: bool = True
    users: str = "users.txt"
    name: str | None = None
    lease_s: float = 600.0
    host: str = "127.0.0.1"
    port: int = 8100
    show_suggestion: bool = False
    cache_dir: str = ".deepmars_cache/web"
    display_size: int = 1024
    item: int | None = None
    class_name: str | None = field(default=None, metadata={"key": "class"})
    format: ExportFormat = ExportFormat.csv
    output: str | None = None
    image_dir: str | None = None
    image_url: str = "/data/local-files/?d={name}"
    input: str | None = None

    def __post_init__(self) -> None:
        require(self.command in COMMANDS, "command", self.command, "one of " + ", ".join(COMMANDS))
        require(self.labels_per_item is None or self.labels_per_item >= 1, "labels_per_item", self.labels_per_item,
                "an integer >= 1 (2 or more: double labeling), or null to keep the queue's")
        require(self.lease_s > 0, "lease_s", self.lease_s, "a number of seconds > 0")
        require(1 <= self.port <= 65535, "port", self.port, "an integer from 1 to 65535")
        require(64 <= self.display_size <= 8192, "display_size", self.display_size, "an integer from 64 to 8192")
        require(self.item is None or self.item >= 1, "item", self.item, "an item id (>= 1)")
        require("{name}" in self.image_url or "{path}" in self.image_url, "image_url", self.image_url,
                "a URL template with {name} or {path}")
        for key in _NEEDS[self.command]:
            value = self.class_name if key == "class" else getattr(self, key)
            require(value is not None and value != "", key, value,
                    f"a value: `label.py {self.command}` needs it (e.g. {key}=...)")


@dataclass(frozen=True)
class LabelOptions:
    """The validated config, paths as paths, for the commands and the page."""

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
    name: str | None = None
    lease_s: float = 600.0
    host: str = "127.0.0.1"
    port: int = 8100
    show_suggestion: bool = False
    cache_dir: Path = Path(".deepmars_cache/web")
    display_size: int = 1024
    item: int | None = None
    class_name: str | None = None
    format: str = "csv"
    output: Path | None = None
    image_dir: Path | None = None
    image_url: str = "/data/local-files/?d={name}"
    input: Path | None = None


_PATHS = ("queue", "users", "cache_dir", "output", "image_dir", "input")


def label_options(cfg: Mapping) -> LabelOptions:
    """``cfg`` (as label.py composes it, or a plain dict) checked against :class:`LabelConfig`."""
    checked = load(LabelConfig, cfg)
    values = {}
    for name in LabelOptions.__dataclass_fields__:
        value = getattr(checked, name)
        if isinstance(value, StrEnum):
            value = value.value
        values[name] = Path(value) if name in _PATHS and value is not None else value
    return LabelOptions(**values)
