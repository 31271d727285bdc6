"""Failed files of a run: all counted, the first few kept to list at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from deepmars.catalog.paths import to_catalog_path, to_catalog_text

MAX_LISTED_FAILURES = 10


@dataclass
class Failures:
    count: int = 0
    listed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) as stored, the first few

    def add(self, path: str, reason: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED_FAILURES:
            # Shown as the catalog stores it: an undecodable name cannot break the report, and
            # what is printed is what a query of the errors table finds.
            self.listed.append((to_catalog_path(path), to_catalog_text(reason)))

    def print(self, catalog: Path, out: TextIO) -> None:
        """The failed files, and how to get all of them from the catalog's errors table."""
        if not self.count:
            return
        print(f"failed files ({self.count}; all of them: python predict.py export table=errors output=errors.csv "
              f"catalog={catalog}):", file=out)
        for path, reason in self.listed:
            print(f"  {path}: {reason}", file=out)
        if self.count > len(self.listed):
            print(f"  ... and {self.count - len(self.listed)} more", file=out)
