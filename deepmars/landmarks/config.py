"""``landmarks.py``'s config (``conf/landmarks/landmarks.yaml``): typed, validated once at start.

The detector settings (:class:`LandmarkSettings` and its sections) are the schema of the file's
``read``/``detect``/``crops``/``output`` sections; :class:`LandmarksConfig` adds the keys of the
classify and query commands. Both are checked by :mod:`deepmars.schema`, so every mistake names
the config key and the allowed values before any image is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from deepmars.config import DEVICE_FORMS, MODEL_FORMS, is_device
from deepmars.inference.runtimes import Precision, Runtime
from deepmars.schema import load, require

BROWSE = "browse"
INPUT_FORMS = "a file, a folder, a glob, or a list of these"


def _in(value: float, lo: float, hi: float, *, lo_open: bool = False) -> bool:
    return (value > lo if lo_open else value >= lo) and value <= hi


@dataclass(frozen=True)
class ReadSettings:
    """How a source image becomes the working image (see reader.py)."""

    working_scale: Any = None  # None (YAML "browse"): width reduced to browse_width; else a factor in (0, 1]
    browse_width: int = 2048
    max_source_pixels: int = 10_000_000_000
    max_working_pixels: int = 100_000_000

    def __post_init__(self) -> None:
        scale = None if self.working_scale == BROWSE else self.working_scale
        number = isinstance(scale, int | float) and not isinstance(scale, bool)
        require(scale is None or (number and _in(scale, 0.0, 1.0, lo_open=True)), "working_scale",
                self.working_scale, "'browse' or a number in (0, 1]")
        object.__setattr__(self, "working_scale", None if scale is None else float(scale))
        require(self.browse_width >= 16, "browse_width", self.browse_width, "an integer >= 16")
        for key in ("max_source_pixels", "max_working_pixels"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "an integer >= 1")


@dataclass(frozen=True)
class DetectSettings:
    """Salience, threshold and region rules (see detect.py); sizes in working pixels unless noted."""

    window: int = 17  # odd side of the salience window, in detection-scale pixels
    scales: Any = (4,)  # a tuple of block-average factors (the YAML may give one integer)
    smooth: int = 2  # radius of the salience box average, in detection-scale pixels
    threshold_quantile: float = 0.95
    min_region: int = 256
    max_region: int = 250_000
    max_side: int = 512  # larger regions are split into pieces of at most this side
    merge_iou: float = 0.5
    tile_size: int = 1024  # detection tiles, in detection-scale pixels
    nodata_mask: bool = True
    nodata_max_value: int = 5
    nodata_margin: int = 2

    def __post_init__(self) -> None:
        require(3 <= self.window <= 255 and self.window % 2 == 1, "window", self.window, "an odd integer in 3..255")
        scales = [self.scales] if isinstance(self.scales, int) else self.scales
        scales = list(scales) if isinstance(scales, (list, tuple)) else []
        require(bool(scales) and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 64 for s in scales)
                and len(set(scales)) == len(scales), "scales", self.scales,
                "a non-empty list of distinct integers in 1..64")
        object.__setattr__(self, "scales", tuple(scales))
        require(0 <= self.smooth <= 64, "smooth", self.smooth, "an integer in 0..64")
        for key in ("threshold_quantile", "merge_iou"):
            require(_in(getattr(self, key), 0.0, 1.0, lo_open=True), key, getattr(self, key), "a number in (0, 1]")
        require(self.min_region >= 1, "min_region", self.min_region, "an integer >= 1")
        require(self.max_region >= max(1, self.min_region), "max_region", self.max_region,
                f"an integer >= min_region ({self.min_region})")
        require(self.max_side >= 1, "max_side", self.max_side, "an integer >= 1")
        require(self.tile_size >= 16, "tile_size", self.tile_size, "an integer >= 16")
        require(0 <= self.nodata_max_value <= 254, "nodata_max_value", self.nodata_max_value, "an integer in 0..254")
        require(0 <= self.nodata_margin <= 64, "nodata_margin", self.nodata_margin, "an integer in 0..64")


@dataclass(frozen=True)
class CropSettings:
    """Crop geometry and encoding (see crops.py)."""

    margin: int = 30
    size: int = 227
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        require(self.margin >= 0, "margin", self.margin, "an integer >= 0")
        require(8 <= self.size <= 4096, "size", self.size, "an integer in 8..4096")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", self.jpeg_quality, "an integer in 1..100")


@dataclass(frozen=True)
class OutputSettings:
    """What the batch writes besides crops (see outputs.py, overlay.py)."""

    placeholder_label: int = -1
    overlay: bool = True
    overlay_max_side: int = 1500

    def __post_init__(self) -> None:
        require(self.placeholder_label >= -1_000_000, "placeholder_label", self.placeholder_label,
                "an integer >= -1000000")
        require(self.overlay_max_side >= 64, "overlay_max_side", self.overlay_max_side, "an integer >= 64")


@dataclass(frozen=True)
class LandmarkSettings:
    read: ReadSettings = ReadSettings()
    detect: DetectSettings = DetectSettings()
    crops: CropSettings = CropSettings()
    output: OutputSettings = OutputSettings()


class Command(StrEnum):
    detect = "detect"
    classify = "classify"
    query = "query"


def _single(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", "???")


@dataclass(frozen=True)
class LandmarksConfig:
    """conf/landmarks/landmarks.yaml: the detector sections and every command's keys."""

    command: Command = Command.detect
    input: Any = None  # a file, a folder, a glob, or a list of these (detect, classify)
    output_dir: str | None = None  # detect
    read: ReadSettings = ReadSettings()
    detect: DetectSettings = DetectSettings()
    crops: CropSettings = CropSettings()
    output: OutputSettings = OutputSettings()
    model: str | None = None
    tracking_uri: str | None = "sqlite:///mlruns/mlflow.db"
    runtime: Runtime = Runtime.auto
    precision: Precision = Precision.fp32
    catalog: str = "catalog.sqlite"
    batch_size: int = 64
    threads: int | None = 1
    device: str = "auto"  # auto (the GPU when torch sees one, else the CPU), cpu, cuda, cuda:N
    min_confidence: float = 0.5
    count_confidence: float = 0.9
    top_k: int = 5
    force: bool = False
    crops_dir: str | None = None
    class_name: str | None = field(default=None, metadata={"key": "class"})
    min_count: int = 1
    limit: int = 50
    csv: str | None = None

    def __post_init__(self) -> None:
        for key in ("batch_size", "top_k"):
            require(getattr(self, key) >= 1, key, getattr(self, key), "an integer >= 1")
        for key in ("min_count", "limit"):
            require(getattr(self, key) >= 0, key, getattr(self, key), "an integer >= 0")
        require(self.threads is None or self.threads >= 1, "threads", self.threads, "an integer >= 1 or null")
        require(is_device(self.device), "device", self.device, DEVICE_FORMS)
        for key in ("min_confidence", "count_confidence"):
            require(_in(getattr(self, key), 0.0, 1.0), key, getattr(self, key), "a number in [0, 1]")
        require(self.csv is None or self.csv.lower().endswith(".csv"), "csv", self.csv, "a file ending in .csv")
        require(bool(self.catalog), "catalog", self.catalog, "a catalog file path")
        if self.command in (Command.detect, Command.classify):
            ok = _single(self.input) or (isinstance(self.input, list) and bool(self.input)
                                         and all(_single(s) for s in self.input))
            require(ok, "input", self.input, INPUT_FORMS)
        if self.command == Command.detect:
            require(_single(self.output_dir), "output_dir", self.output_dir, "a folder path")
            # A model with the default command would silently only detect: say how to classify.
            require(self.model is None, "model", self.model, "null for detect, which does not classify; run "
                    "python landmarks.py classify input=... model=... catalog=...")
        if self.command == Command.classify:
            require(bool(self.model), "model", self.model,
                    MODEL_FORMS + " (e.g. python landmarks.py classify model=...)")


    @property
    def settings(self) -> LandmarkSettings:
        """The detector sections, as the detector and the classifier take them."""
        return LandmarkSettings(read=self.read, detect=self.detect, crops=self.crops, output=self.output)


def config_of(cfg: Mapping[str, Any]) -> LandmarksConfig:
    """``cfg`` (landmarks.yaml as composed, or a plain dict) checked against :class:`LandmarksConfig`."""
    return load(LandmarksConfig, cfg)


def settings_from_config(cfg: Mapping[str, Any]) -> LandmarkSettings:
    """The detector settings of a landmarks config, the whole config validated first."""
    return config_of(cfg).settings
