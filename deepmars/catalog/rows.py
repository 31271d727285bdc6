"""Typed catalog rows: one NamedTuple per table, its fields in the table's column order.

A row is both readable (``row.path``) and what ``executemany`` takes (a tuple), so code that
writes a table builds its row type and never counts positions. ``tests/test_catalog_schema.py``
checks that every row type's fields are exactly its table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple


def utc_now() -> str:
    """Timestamps as UTC ISO 8601 with microseconds: sortable as text, comparable across shards."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ModelInfo:
    """What the catalog records about a model, so queries can name its classes."""

    model_id: str
    class_names: list[str]
    dataset: str | None
    temperature: float
    preprocess: dict
    model_cfg: dict


class PredictionRow(NamedTuple):
    """One image classified by one model (table ``predictions``)."""

    model_id: str
    path: str
    sha256: str
    file_size: int
    file_mtime_ns: int
    width: int
    height: int
    sol: int | None
    instrument: str | None
    source_image: str | None
    metadata: str  # JSON of the other file-name fields
    predicted_class: str
    confidence: float
    top_k: str  # JSON [{"class": name, "p": probability}, ...]
    abstained: int
    classified_at: str
    id: int | None = None  # this catalog file's row number (None: assigned on insert); not merged


class ErrorRow(NamedTuple):
    """Why a path could not be classified by a model (table ``errors``)."""

    model_id: str
    path: str
    sha256: str | None
    file_size: int | None
    file_mtime_ns: int | None
    reason: str
    failed_at: str


class LandmarkImageRow(NamedTuple):
    """One source image whose landmarks a model classified (table ``landmark_images``)."""

    model_id: str
    sha256: str
    source_image: str
    path: str
    file_size: int
    file_mtime_ns: int
    source_width: int
    source_height: int
    working_width: int
    working_height: int
    landmarks: int
    notes: str
    detector: str  # JSON of the read/detect/crops settings
    overlay: str | None
    classified_at: str
    id: int | None = None  # this catalog file's row number (None: assigned on insert); not merged


class LandmarkRow(NamedTuple):
    """One classified landmark of a source image (table ``landmarks``)."""

    model_id: str
    sha256: str
    landmark_id: int
    source_image: str
    crop_file: str | None
    x: int
    y: int
    w: int
    h: int
    src_x: int
    src_y: int
    src_w: int
    src_h: int
    area: int
    salience: float
    predicted_class: str
    confidence: float
    top_k: str
    abstained: int
    classified_at: str


class LandmarkCountRow(NamedTuple):
    """Landmarks of one class in one image at a posterior threshold (table ``landmark_counts``)."""

    model_id: str
    sha256: str
    count_confidence: float
    class_: str  # the column is "class", a Python keyword
    source_image: str
    n: int


class RunRow(NamedTuple):
    """One invocation of predict.py or landmarks.py classify (table ``runs``)."""

    run_id: str
    model_id: str
    input: str
    shard: str | None
    started_at: str
    finished_at: str | None
    classified: int | None
    reused: int | None
    skipped: int | None
    failed: int | None
    exit_code: int | None
    config: str
    command: str


def columns(row_type: type[tuple]) -> tuple[str, ...]:
    """The SQL column names of a row type (``class_`` is the column ``class``)."""
    return tuple(name.rstrip("_") for name in row_type._fields)  # type: ignore[attr-defined]
