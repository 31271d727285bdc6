"""A batch of images -> one landmark data set folder; a bad image is reported and the batch goes on."""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from deepmars.catalog.paths import to_catalog_text
from deepmars.data.images import IMAGE_SUFFIXES
from deepmars.errors import ConfigError, ImageError
from deepmars.landmarks.config import LandmarkSettings, config_of
from deepmars.landmarks.outputs import DatasetWriter
from deepmars.landmarks.pipeline import process_image, source_name
from deepmars.landmarks.reader import JPEG2000_SUFFIXES

SUFFIXES = tuple(IMAGE_SUFFIXES) + JPEG2000_SUFFIXES


@dataclass(frozen=True)
class BatchSummary:
    images: int
    failed: int
    landmarks: int
    out_dir: Path

    def __str__(self) -> str:
        failed = f", {self.failed} failed (see images.csv)" if self.failed else ""
        done = self.images - self.failed
        return f"{self.landmarks} landmarks from {done} of {self.images} images{failed} -> {self.out_dir}"


def find_images(spec: str | Sequence[str]) -> list[Path]:
    """Expand ``input``: a file, a folder (its image files), a glob, or a list of these; sorted.

    A listed file that does not exist is kept, so the batch reports it as that image's error.
    """
    entries = [spec] if isinstance(spec, str | Path) else list(spec)
    found: list[Path] = []
    for entry in entries:
        entry = str(entry)
        if any(ch in entry for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(entry, recursive=True) if Path(p).is_file())
        elif Path(entry).is_dir():
            found += sorted(p for p in Path(entry).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            found.append(Path(entry))
    if not found:
        raise ConfigError(f"input: {spec!r} matched no images (allowed: a file, a folder of "
                          f"{'/'.join(SUFFIXES)} files, a glob, or a list of these)")
    return found


def run_batch(paths: Sequence[Path], settings: LandmarkSettings, out_dir: str | Path) -> BatchSummary:
    """Detect and crop every image into ``out_dir``; per-image outcome goes to images.csv."""
    failed = total = 0
    seen: dict[str, Path] = {}
    with DatasetWriter(out_dir, settings) as writer:
        for path in tqdm(paths, desc="landmarks", unit="image"):
            source = source_name(path)
            try:
                if source in seen:
                    raise ImageError(f"source name {source!r} already used by {seen[source]}: crop names would "
                                     "collide; rename one of the files", path)
                result = process_image(path, settings, source)
            except ImageError as exc:
                failed += 1
                writer.add_error(source, path, str(exc))
                tqdm.write(to_catalog_text(f"skipped: {exc}"))
                continue
            seen[source] = path
            total += len(result.landmarks)
            writer.add(result)
            for note in result.notes:
                tqdm.write(f"{source}: {note}")
    return BatchSummary(len(paths), failed, total, Path(out_dir))


def run_from_config(cfg: Mapping[str, Any]) -> BatchSummary:
    """What ``landmarks.py`` runs: validate every setting, expand ``input``, run the batch."""
    c = config_of(cfg)
    summary = run_batch(find_images(c.input), c.settings, c.output_dir)
    print(summary)
    return summary
