"""What every web app over the catalog is configured with (validated by each app's options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WebSettings:
    """The shared knobs: which catalog, where to listen, where image renditions are cached.

    ``catalog`` is None for an app that reads no catalog (the labeling page reads its label queue).
    """

    catalog: Path | None
    host: str = "127.0.0.1"
    port: int = 8000
    cache_dir: Path = Path(".deepmars_cache/web")  # thumbnails and display copies (JPEG), made on demand
    thumbnail_size: int = 256
    display_size: int = 1600  # longest side of the copy a detail page shows
    # Files are served only when their real location (symlinks resolved) lies under one of these
    # folders; empty: under the folder the catalog names for the file (no symlink out of it).
    image_roots: tuple[Path, ...] = field(default_factory=tuple)
    lock_timeout_s: float = 5.0
    connections: int = 8  # read-only connections kept open for concurrent requests

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
