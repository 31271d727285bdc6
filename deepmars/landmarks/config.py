"""Landmark detector settings: typed, validated once at start, from ``conf/landmarks/landmarks.yaml``.

Every check names the config key and the allowed values, so a typo fails before any image is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deepmars.errors import ConfigError

BROWSE = "browse"


@dataclass(frozen=True)
class ReadSettings:
    """How a source image becomes the working image (see reader.py)."""

    working_scale: float | None = None  # None: "browse", width reduced to browse_width
    browse_width: int = 2048
    max_source_pixels: int = 10_000_000_000
    max_working_pixels: int = 100_000_000


@dataclass(frozen=True)
class DetectSettings:
    """Salience, threshold and region rules (see detect.py); sizes in working pixels unless noted."""

    window: int = 17  # odd side of the salience window, in detection-scale pixels
    scales: tuple[int, ...] = (4,)
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


@dataclass(frozen=True)
class CropSettings:
    """Crop geometry and encoding (see crops.py)."""

    margin: int = 30
    size: int = 227
    jpeg_quality: int = 95


@dataclass(frozen=True)
class OutputSettings:
    """What the batch writes besides crops (see outputs.py, overlay.py)."""

    placeholder_label: int = -1
    overlay: bool = True
    overlay_max_side: int = 1500


@dataclass(frozen=True)
class LandmarkSettings:
    read: ReadSettings = ReadSettings()
    detect: DetectSettings = DetectSettings()
    crops: CropSettings = CropSettings()
    output: OutputSettings = OutputSettings()


def _get(section: Mapping[str, Any], prefix: str, key: str) -> Any:
    if key not in section:
        raise ConfigError(f"{prefix}{key}: missing")
    return section[key]


def _int(section: Mapping[str, Any], prefix: str, key: str, lo: int, hi: int | None = None) -> int:
    value = _get(section, prefix, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
        raise ConfigError(f"{prefix}{key}: got {value!r}, allowed: {allowed}")
    return value


def _float(section: Mapping[str, Any], prefix: str, key: str, lo: float, hi: float, lo_open: bool = False) -> float:
    value = _get(section, prefix, key)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{prefix}{key}: got {value!r}, allowed: a number in {bracket}{lo}, {hi}]")
    return float(value)


def _bool(section: Mapping[str, Any], prefix: str, key: str) -> bool:
    value = _get(section, prefix, key)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}{key}: got {value!r}, allowed: true or false")
    return value


def _read(section: Mapping[str, Any]) -> ReadSettings:
    p = "read."
    scale = _get(section, p, "working_scale")
    if scale == BROWSE:
        working_scale = None
    elif isinstance(scale, str):
        raise ConfigError(f"{p}working_scale: got {scale!r}, allowed: 'browse' or a number in (0, 1]")
    else:
        working_scale = _float(section, p, "working_scale", 0.0, 1.0, lo_open=True)
    return ReadSettings(
        working_scale=working_scale,
        browse_width=_int(section, p, "browse_width", 16),
        max_source_pixels=_int(section, p, "max_source_pixels", 1),
        max_working_pixels=_int(section, p, "max_working_pixels", 1),
    )


def _scales(section: Mapping[str, Any], p: str) -> tuple[int, ...]:
    value = _get(section, p, "scales")
    items = [value] if isinstance(value, int) else list(value) if not isinstance(value, str) else None
    if not items or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 64 for s in items) \
            or len(set(items)) != len(items):
        raise ConfigError(f"{p}scales: got {value!r}, allowed: a non-empty list of distinct integers in 1..64")
    return tuple(items)


def _detect(section: Mapping[str, Any]) -> DetectSettings:
    p = "detect."
    window = _int(section, p, "window", 3, 255)
    if window % 2 == 0:
        raise ConfigError(f"{p}window: got {window}, allowed: an odd integer in 3..255")
    min_region = _int(section, p, "min_region", 1)
    max_region = _int(section, p, "max_region", 1)
    if max_region < min_region:
        raise ConfigError(f"{p}max_region: got {max_region}, allowed: an integer >= min_region ({min_region})")
    return DetectSettings(
        window=window,
        scales=_scales(section, p),
        smooth=_int(section, p, "smooth", 0, 64),
        threshold_quantile=_float(section, p, "threshold_quantile", 0.0, 1.0, lo_open=True),
        min_region=min_region,
        max_region=max_region,
        max_side=_int(section, p, "max_side", 1),
        merge_iou=_float(section, p, "merge_iou", 0.0, 1.0, lo_open=True),
        tile_size=_int(section, p, "tile_size", 16),
        nodata_mask=_bool(section, p, "nodata_mask"),
        nodata_max_value=_int(section, p, "nodata_max_value", 0, 254),
        nodata_margin=_int(section, p, "nodata_margin", 0, 64),
    )


def _crops(section: Mapping[str, Any]) -> CropSettings:
    p = "crops."
    return CropSettings(
        margin=_int(section, p, "margin", 0),
        size=_int(section, p, "size", 8, 4096),
        jpeg_quality=_int(section, p, "jpeg_quality", 1, 100),
    )


def _output(section: Mapping[str, Any]) -> OutputSettings:
    p = "output."
    return OutputSettings(
        placeholder_label=_int(section, p, "placeholder_label", -1_000_000),
        overlay=_bool(section, p, "overlay"),
        overlay_max_side=_int(section, p, "overlay_max_side", 64),
    )


def _section(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(cfg, "", key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: got {value!r}, allowed: a mapping of settings")
    return value


def settings_from_config(cfg: Mapping[str, Any]) -> LandmarkSettings:
    """Validate the ``read``/``detect``/``crops``/``output`` sections of a plain (resolved) config dict."""
    return LandmarkSettings(
        read=_read(_section(cfg, "read")),
        detect=_detect(_section(cfg, "detect")),
        crops=_crops(_section(cfg, "crops")),
        output=_output(_section(cfg, "output")),
    )
