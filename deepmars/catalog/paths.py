"""How a file path is written into the catalog, and how a stored path is turned back into the file name.

On POSIX a file name is bytes. Python shows the bytes that are not valid UTF-8 as lone surrogates
(``b"caf\\xff.JPG"`` -> ``"caf\\udcff.JPG"``, the ``surrogateescape`` rule of ``os.fsdecode``); SQLite
TEXT, a CSV file written as UTF-8 and many consoles cannot hold those. The rule, for every path the
catalog stores or compares (predictions, errors, landmark_images, runs.input) and every path shown
in a report:

- a path that is valid UTF-8 text is stored exactly as it is (so every existing catalog stays valid);
- each byte that is not part of valid UTF-8 is written as the four characters ``\\xNN`` (two lowercase
  hex digits, ``\\x80``..``\\xff``), the rest of the name as it is: ``caf\\xff.JPG``.

``to_fs_path`` is the inverse: each ``\\xNN`` with NN in ``80``..``ff`` becomes that byte again, so a
stored path opens the file it came from.

The one ambiguity: a name that is valid UTF-8 and holds the literal text ``\\x`` followed by two
lowercase hex digits from ``80`` to ``ff`` (e.g. a file really named ``caf\\xff.JPG``, backslash
included) is stored as itself and read back by ``to_fs_path`` as the byte; if both files exist in one
folder they share one catalog path. ``existing_fs_path`` settles it for a file that exists: the
literal name wins when such a file exists.

Text taken from a file name or an operating system message (error reasons, name metadata, source
image ids) goes through ``to_catalog_text``, the same escapes without the promise of an inverse.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")


def to_catalog_text(text: str) -> str:
    """``text`` with every undecodable byte (a surrogate from ``surrogateescape``) written as ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text  # the common case: nothing to escape
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate that is no escaped byte (only from text built by hand, or Windows names
        # with unpaired UTF-16 halves): shown as \udXXX, never a crash.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def to_catalog_path(path: str | os.PathLike) -> str:
    """The catalog's text for a file system path (str, bytes or Path): undecodable bytes as ``\\xNN``."""
    value = os.fspath(path)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return to_catalog_text(value)


def to_fs_path(stored: str) -> str:
    """The file system path (as ``os.fsdecode`` shows it) of a path stored by ``to_catalog_path``."""
    if "\\x" not in stored:
        return stored
    return _ESCAPE.sub(lambda m: chr(0xDC00 + int(m[1], 16)), stored)


def existing_fs_path(stored: str) -> str:
    """``to_fs_path``, except that a file whose name is literally ``stored`` wins (the one ambiguity)."""
    path = to_fs_path(stored)
    if path != stored and os.path.lexists(stored):
        return stored
    return path


def storable_row(row: tuple) -> tuple:
    """A catalog row (NamedTuple) with every text field passed through ``to_catalog_text``.

    Paths in rows are file system paths until this point; the stores call it on every row they
    write, so no path or name-derived text can reach SQLite unescaped.
    """
    if all(not isinstance(v, str) or v.isascii() for v in row):
        return row  # the common case, without an encode per field
    return row._make(to_catalog_text(v) if isinstance(v, str) else v for v in row)  # type: ignore[attr-defined]
