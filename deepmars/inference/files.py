"""A file's identity for the catalog: path, size, mtime and content hash, read from one open file."""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple


class FileIdentity(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    sha256: str


def hash_file(path: str) -> FileIdentity:
    """Size and mtime come from the same open file as the hash, so the three describe one content."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return FileIdentity(path, st.st_size, st.st_mtime_ns, digest)
