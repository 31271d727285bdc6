"""Which files a web app may serve, and JPEG renditions of them cached on disk.

A browser never names a file: it sends a row key, the server reads the stored path from the
catalog (``catalog_file``) and serves it only when ``ServedFiles.check`` allows it: a regular file
whose real location (symlinks resolved, ``..`` collapsed) lies under one of the configured image
roots, or, with none configured, in the very folder the catalog names for it.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from deepmars.catalog.paths import existing_fs_path
from deepmars.errors import DataError


class FileRefused(DataError):
    """The catalog names a file that must not be served (outside the image roots, not a file)."""


class FileMissing(DataError):
    """The catalog names a file that is not there (moved, deleted, another machine's path)."""


def catalog_file(stored: str, catalog: Path) -> Path:
    """The file a stored catalog path names: absolute as stored, or relative to the catalog's folder.

    Every web route goes through this one function, so a change in how catalogs store paths is
    made here only.
    """
    path = Path(existing_fs_path(stored))  # undecodable bytes are stored as \xNN escapes
    return path if path.is_absolute() else catalog.resolve().parent / path


class ServedFiles:
    """The rule for which catalog files may be served, and a disk cache of their JPEG renditions."""

    def __init__(self, catalog: Path, cache_dir: Path, roots: tuple[Path, ...] = ()):
        self.catalog = catalog
        self.cache_dir = cache_dir
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def check(self, stored: str) -> Path:
        """The real path of a stored file, or FileMissing / FileRefused."""
        named = catalog_file(stored, self.catalog)
        real = Path(os.path.realpath(named))
        allowed = self.roots or (Path(os.path.realpath(named.parent)),)
        if not any(real == root or root in real.parents for root in allowed):
            raise FileRefused("the file lies outside the image roots (a symlink or '..' out of them)", named)
        if not real.exists():
            raise FileMissing("the catalog names this file, but it is not there", named)
        if not real.is_file():
            raise FileRefused("not a regular file", named)
        return real

    def rendition(self, name: str, make: Callable[[], Image.Image]) -> Path:
        """The cached JPEG ``name`` (made with ``make`` once, written atomically); one maker per name."""
        target = self.cache_dir / name[:2] / name
        if target.is_file():
            return target
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if not target.is_file():
                image = make()
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
                with os.fdopen(fd, "wb") as out:
                    image.save(out, "JPEG", quality=85)
                os.replace(tmp, target)
        with self._guard:
            self._locks.pop(name, None)
        return target


def open_image(path: Path, max_side: int) -> Image.Image:
    """``path`` decoded (JPEG at a reduced DCT scale when it can) and shrunk to ``max_side``, as RGB or L.

    PIL's decompression-bomb limit applies (an error past about 179 Mpx); huge HiRISE products are
    shown through the landmark reader's working image instead.
    """
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("L" if image.mode == "L" else "RGB", (max_side, max_side))
        image.load()
        image = _eight_bit(image)
        image.thumbnail((max_side, max_side))
        return image


def _eight_bit(image: Image.Image) -> Image.Image:
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("I;16", "I;16B", "I", "F"):
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return image.point(lambda v: (v - lo) * scale).convert("L")
    return image.convert("RGB")
