"""A batch of images -> one landmark data set folder; a bad image is reported and the batch goes on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from deepmars.catalog.paths import to_catalog_text
from deepmars.data.images import IMAGE_SUFFIXES
from deepmars.errors import ConfigError, ImageError
from deepmars.inference.listing import UnreadableFolders, glob_paths, scan_folder
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
    unreadable_folders: int = 0

    def __str__(self) -> str:
        failed = f", {self.failed} failed (see images.csv)" if self.failed else ""
        if self.unreadable_folders:
            failed += f", {self.unreadable_folders} folders could not be read (see images.csv)"
        done = self.images - self.failed
        return f"{self.landmarks} landmarks from {done} of {self.images} images{failed} -> {self.out_dir}"


def find_images(spec: str | Sequence[str], unreadable: UnreadableFolders | None = None) -> list[Path]:
    """Expand ``input``: a file, a folder (its image files), a glob, or a list of these; sorted.

    A listed file that does not exist is kept, so the batch reports it as that image's error. A
    folder that cannot be read goes to ``unreadable`` (a warning on stderr by default); globs do not
    descend into folder symlinks through ``**`` (``deepmars.inference.listing``).
    """
    unreadable = UnreadableFolders() if unreadable is None else unreadable
    entries = [spec] if isinstance(spec, str | Path) else list(spec)
    found: list[Path] = []
    for entry in entries:
        entry = str(entry)
        if any(ch in entry for ch in "*?["):
            found += sorted(Path(p) for p in glob_paths(entry, unreadable) if Path(p).is_file())
        elif Path(entry).is_dir():
            found += [Path(e.path) for e in scan_folder(entry, unreadable)
                      if e.is_file() and Path(e.name).suffix.lower() in SUFFIXES]
        else:
            found.append(Path(entry))
    if not found:
        unread = f"; folders that could not be read: {unreadable.describe()}" if unreadable else ""
        raise ConfigError(f"input: {spec!r} matched no images (allowed: a file, a folder of "
                          f"{'/'.join(SUFFIXES)} files, a glob, or a list of these){unread}")
    return found


def run_batch(paths: Sequence[Path], settings: LandmarkSettings, out_dir: str | Path,
              unreadable: UnreadableFolders | None = None) -> BatchSummary:
    """Detect and crop every image into ``out_dir``; per-image outcome goes to images.csv.

    Each folder in ``unreadable`` gets an error row there too: its images are missing from the batch.
    """
    failed = total = 0
    seen: dict[str, Path] = {}
    unreadable = UnreadableFolders() if unreadable is None else unreadable
    with DatasetWriter(out_dir, settings) as writer:
        for folder, reason in unreadable.found.items():
            writer.add_error("", Path(folder), f"{folder}: cannot read folder ({reason}); its images are missing")
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
    return BatchSummary(len(paths), failed, total, Path(out_dir), len(unreadable))


def run_from_config(cfg: Mapping[str, Any]) -> BatchSummary:
    """What ``landmarks.py`` runs: validate every setting, expand ``input``, run the batch."""
    c = config_of(cfg)
    unreadable = UnreadableFolders()
    summary = run_batch(find_images(c.input, unreadable), c.settings, c.output_dir, unreadable)
    print(summary)
    return summary
