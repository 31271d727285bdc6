"""Errors a user can act on: each names the file (and line) or config key at fault."""

from __future__ import annotations

from pathlib import Path


class DeepMarsError(Exception):
    """Base class: entry points print these as one clear message instead of a traceback."""


class ConfigError(DeepMarsError):
    """A config value is missing, of the wrong type, or not one of the allowed values."""


class DataError(DeepMarsError):
    """A data set file is missing or malformed. Names the file and, when known, the line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.reason = message


class ImageError(DataError):
    """One image cannot be used (corrupt, truncated, unsupported mode, too large)."""


class WeightsError(DeepMarsError):
    """Requested pretrained weights cannot be had, or do not fit the architecture."""
