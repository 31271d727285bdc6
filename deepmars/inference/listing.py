"""Listing input files: globs that cannot loop, and folders that cannot be read reported, not skipped.

``glob_paths`` matches as ``glob.glob(pattern, recursive=True)`` does (``*``, ``?``, ``[...]``, ``**``
for any depth, names starting with a dot only when the pattern's part does), with two differences:

- ``**`` does not descend into symlinked folders (as folder inputs and Python 3.13's
  ``pathlib.Path.glob``): a link back into the tree (``self -> .``, ``up -> ..``) would list every
  file again at each level, or without end. A folder link the pattern names, or one that a one-level
  wildcard matches, is followed: that cannot loop. File symlinks are ordinary matches;
- a folder that cannot be read (permission denied, I/O error) is reported to ``UnreadableFolders``,
  once, instead of being silently skipped: its images would otherwise be missing from the run
  without a word.

Matches come back sorted, each path once.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from deepmars.catalog.paths import to_catalog_path, to_catalog_text

# A missing folder matches nothing, as in glob; any other failure to read one is reported.
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR)


def _warn_on_stderr(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)  # above a progress bar, if one is running


@dataclass
class UnreadableFolders:
    """Folders an input listing could not read: each warned about once, then listed in the run's summary."""

    warn: Callable[[str], None] = _warn_on_stderr
    found: dict[str, str] = field(default_factory=dict)  # folder (as the catalog shows paths) -> reason

    def add(self, folder: str, exc: OSError) -> None:
        shown = to_catalog_path(os.path.abspath(folder or os.curdir))
        if shown in self.found:
            return  # a run lists its input twice (count, then classify): one warning
        self.found[shown] = to_catalog_text(exc.strerror or str(exc))
        self.warn(f"warning: cannot read folder {shown} ({self.found[shown]}); the images in it are not "
                  "classified")

    def __len__(self) -> int:
        return len(self.found)

    def describe(self) -> str:
        """``folder (reason), ...`` for messages."""
        return ", ".join(f"{folder} ({reason})" for folder, reason in self.found.items())

    def print(self, out: TextIO) -> None:
        """The folders whose images were not classified, as the last lines of a run's report."""
        if self.found:
            print(f"folders that could not be read ({len(self.found)}):", file=out)
            for folder, reason in self.found.items():
                print(f"  {folder}: {reason}", file=out)


def scan_folder(folder: str, unreadable: UnreadableFolders) -> list[os.DirEntry]:
    """The entries of ``folder`` sorted by name; [] (and reported, unless it does not exist) if unreadable."""
    try:
        with os.scandir(folder or os.curdir) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        if exc.errno not in _NOT_THERE:
            unreadable.add(folder, exc)
        return []


def glob_paths(pattern: str, unreadable: UnreadableFolders | None = None) -> list[str]:
    """Paths matching ``pattern`` (files and folders), sorted, each once; see the module docstring."""
    unreadable = UnreadableFolders() if unreadable is None else unreadable
    return sorted(set(_glob(pattern, False, unreadable)))


def _glob(pattern: str, dirs_only: bool, unreadable: UnreadableFolders) -> Iterator[str]:
    folder, part = os.path.split(pattern)
    if not glob.has_magic(pattern):
        if (os.path.isdir(pattern) if dirs_only or not part else os.path.lexists(pattern)):
            yield pattern
        return
    if folder and folder != pattern and glob.has_magic(folder):
        folders: Iterator[str] = _glob(folder, True, unreadable)
    else:
        folders = iter([folder])
    for parent in folders:
        for name in _match(parent, part, dirs_only, unreadable):
            yield os.path.join(parent, name)


def _match(folder: str, part: str, dirs_only: bool, unreadable: UnreadableFolders) -> Iterator[str]:
    """Names (relative to ``folder``) that one part of a pattern matches."""
    if part == "**":
        yield ""  # zero folders: "a/**/b" matches "a/b"
        yield from _descend(folder, dirs_only, unreadable)
    elif glob.has_magic(part):
        hidden_ok = part.startswith(".")
        for entry in scan_folder(folder, unreadable):
            if (hidden_ok or not entry.name.startswith(".")) and fnmatch.fnmatch(entry.name, part) \
                    and (not dirs_only or _is_dir(entry, follow=True)):
                yield entry.name
    elif not part:
        yield part  # "a/*/": the folders themselves, as "a/x/"
    elif (os.path.isdir if dirs_only else os.path.lexists)(os.path.join(folder, part)):
        yield part


def _descend(folder: str, dirs_only: bool, unreadable: UnreadableFolders) -> Iterator[str]:
    """What ``**`` matches below ``folder``: every name at any depth, never through a folder symlink."""
    for entry in scan_folder(folder, unreadable):
        if entry.name.startswith("."):
            continue
        real_folder = _is_dir(entry, follow=False)
        if real_folder or not dirs_only:
            yield entry.name
        if real_folder:
            for below in _descend(os.path.join(folder, entry.name), dirs_only, unreadable):
                yield os.path.join(entry.name, below)


def _is_dir(entry: os.DirEntry, follow: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False
