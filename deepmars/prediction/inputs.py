"""Which files a predict run reads, in a deterministic order, and which of them a shard owns.

An input is a folder (walked recursively), a glob, or a text file listing one path per line. Paths
are streamed, never collected into one list, so a 3.7 M image archive costs no memory here; the
order is fixed (sorted names within each folder, sorted glob matches, list order) so two runs over
the same files see them in the same order. Paths are made absolute: the catalog key must not
depend on the working directory a run was started from. Folder symlinks are not followed by a
folder input nor by a glob's ``**`` (``deepmars.inference.listing``), so a link loop cannot hang a
run or list a file twice; a folder that cannot be read is reported, not skipped in silence.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from deepmars.catalog.paths import existing_fs_path
from deepmars.data.images import IMAGE_SUFFIXES
from deepmars.errors import ConfigError
from deepmars.inference.listing import UnreadableFolders, glob_paths, scan_folder

_GLOB_CHARS = set("*?[")


def is_image_name(name: str) -> bool:
    """True for the image suffixes deepmars decodes (.jpg .jpeg .png .tif .tiff, any case)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: owns the paths whose hash modulo ``count`` is ``index``.

    ``group_of``: paths of one group (e.g. the crops of one source image) hash by that group's
    name instead, so one shard holds all of them; a path without a group hashes by itself.
    """

    index: int
    count: int
    group_of: Callable[[str], str | None] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str | None) -> Shard | None:
        """``"i/n"`` with 0 <= i < n, or None for no sharding."""
        if text is None or str(text).strip() == "":
            return None
        parts = str(text).split("/")
        try:
            index, count = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"shard: {text!r} is not of the form i/n (e.g. shard=0/4)") from None
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"shard: {text!r} needs 0 <= i < n (e.g. shard=0/4 .. shard=3/4)")
        return cls(index, count)

    def grouped(self, group_of: Callable[[str], str | None]) -> Shard:
        return replace(self, group_of=group_of)

    def owns(self, path: str) -> bool:
        key = (self.group_of(path) if self.group_of else None) or path
        # A stable hash (not Python's salted hash()) so every process and machine agrees.
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def input_kind(spec: str) -> str:
    """'folder', 'glob' or 'list' for an input spec; ConfigError if it names nothing usable."""
    if any(c in spec for c in _GLOB_CHARS) and not os.path.exists(spec):
        return "glob"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.is_file():
        if is_image_name(path.name):
            raise ConfigError(f"input: {spec!r} is a single image; give its folder, a glob or a list file")
        return "list"
    raise ConfigError(f"input: {spec!r} does not exist (expected a folder, a glob such as "
                      f"'images/**/*.JPG', or a text file with one image path per line)")


def _walk_folder(root: Path, unreadable: UnreadableFolders) -> Iterator[str]:
    """Image files under ``root``, depth first, names sorted: deterministic and streaming."""
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        entries = scan_folder(folder, unreadable)  # an unreadable folder is reported, not silently skipped
        subdirs = []
        for entry in entries:
            # Folder symlinks are not followed (as os.walk): a link loop must not hang a run.
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            elif is_image_name(entry.name):
                yield entry.path
        stack.extend(reversed(subdirs))


def _read_list(list_file: Path) -> Iterator[str]:
    """Paths listed one per line; relative ones are relative to the list file's folder.

    A line is a file name as its bytes (what ``find`` writes: bytes that are not UTF-8 are kept as
    they are) or as the catalog and the error reports show it (those bytes as ``\\xNN``), so a list
    made from an export names the same files.
    """
    base = list_file.parent
    with open(list_file, encoding="utf-8", errors="surrogateescape") as f:
        for raw in f:
            line = raw.strip()
            if line and not line.startswith("#"):
                path = str(base / line) if not os.path.isabs(line) else line
                yield existing_fs_path(path)


def iter_inputs(spec: str, shard: Shard | None = None, unreadable: UnreadableFolders | None = None) -> Iterator[str]:
    """Absolute paths of the images named by ``spec`` that ``shard`` owns, in a fixed order.

    Folders that cannot be read go to ``unreadable`` (by default a warning on stderr each).
    """
    unreadable = UnreadableFolders() if unreadable is None else unreadable
    kind = input_kind(spec)
    if kind == "folder":
        paths: Iterator[str] = _walk_folder(Path(spec), unreadable)
    elif kind == "glob":
        paths = (p for p in glob_paths(spec, unreadable) if is_image_name(p) and os.path.isfile(p))
    else:
        paths = _read_list(Path(spec))
    for path in paths:
        path = os.path.abspath(path)
        if shard is None or shard.owns(path):
            yield path


def count_inputs(spec: str, shard: Shard | None = None, unreadable: UnreadableFolders | None = None) -> int:
    """How many paths ``iter_inputs`` will yield: one cheap listing pass, for the progress ETA."""
    return sum(1 for _ in iter_inputs(spec, shard, unreadable))
