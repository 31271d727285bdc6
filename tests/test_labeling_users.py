"""The users file: tokens stored as digests, a bad line named, no anonymous user."""

from __future__ import annotations

import pytest

from deepmars.errors import ConfigError, DataError
from deepmars.labeling.users import add_user, read_users, token_digest


def test_added_users_are_found_by_their_token_only(tmp_path):
    path = tmp_path / "users.txt"
    alice, bob = add_user(path, "alice"), add_user(path, "bob")
    assert alice not in path.read_text() and token_digest(alice) in path.read_text()
    users = read_users(path)
    assert users.user_for(alice) == "alice" and users.user_for(bob) == "bob"
    assert users.user_for("guess") is None and users.user_for("") is None and users.user_for(None) is None
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ConfigError, match="already"):
        add_user(path, "alice")
    with pytest.raises(ConfigError, match="name"):
        add_user(path, "no spaces allowed")


def test_a_malformed_users_file_names_the_line(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text(f"# labelers\nalice {token_digest('x')}\nbob plaintext-token\n")
    with pytest.raises(DataError, match=r"users.txt:3: expected"):
        read_users(path)
    path.write_text(f"alice {token_digest('x')}\nalice {token_digest('y')}\n")
    with pytest.raises(DataError, match=r"users.txt:2: user 'alice' listed twice"):
        read_users(path)
    with pytest.raises(DataError, match="not found"):
        read_users(tmp_path / "missing.txt")
