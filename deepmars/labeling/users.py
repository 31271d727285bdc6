"""The users file: who may label, each with a secret token (stored only as its SHA-256).

One user per line, ``<name> sha256:<hex digest of the token>``; ``#`` starts a comment.
``python label.py adduser name=alice users=users.txt`` appends a user and prints the token
once. The server accepts a write only with a token that hashes to a listed digest, and records
the user's name with every label: there are no anonymous writes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from deepmars.errors import ConfigError, DataError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def token_digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Users:
    digests: dict[str, str]  # name -> sha256:<hex>

    def user_for(self, token: str | None) -> str | None:
        """The name whose token this is, or None (compared in constant time)."""
        if not token:
            return None
        digest = token_digest(token)
        for name, expected in self.digests.items():
            if hmac.compare_digest(digest, expected):
                return name
        return None


def read_users(path: Path) -> Users:
    """Every user of the file; a malformed line is a DataError naming its file and line."""
    if not path.is_file():
        raise DataError(f"users file not found; create one with `python label.py adduser name=<name> users={path}`",
                        path)
    digests: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2 or not NAME.match(fields[0]) or not DIGEST.match(fields[1]):
            raise DataError("expected '<name> sha256:<64 hex digits>' (name: letters, digits, _ . @ -)", path, lineno)
        if fields[0] in digests:
            raise DataError(f"user {fields[0]!r} listed twice", path, lineno)
        digests[fields[0]] = fields[1]
    if not digests:
        raise DataError("the users file lists no user", path)
    return Users(digests)


def add_user(path: Path, name: str) -> str:
    """Append a user with a new random token; returns the token (shown once, never stored)."""
    if not name or not NAME.match(name):
        raise ConfigError(f"name: {name!r} must be 1-64 letters, digits or _ . @ - (starting with a letter or digit)")
    existing = read_users(path).digests if path.is_file() and path.stat().st_size else {}
    if name in existing:
        raise ConfigError(f"name: user {name!r} is already in {path}")
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{name} {token_digest(token)}\n")
    return token
