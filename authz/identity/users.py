"""Local human users: argon2id password hashes (slow on purpose; humans pick guessable passwords)."""

from __future__ import annotations

import time
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authz.storage.models import User
from authz.storage.protocols import UserStore

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("timing equaliser")


def create_user(store: UserStore, username: str, password: str | None) -> User:
    """Add a user. ``password=None`` makes a user who cannot sign in with a password (dev mode only)."""
    if not username or len(username) > 255:
        raise ValueError("a username is 1-255 characters")
    user = User(
        id=uuid.uuid4().hex,
        username=username,
        password_hash=_hasher.hash(password) if password else "!",
        created_at=int(time.time()),
    )
    store.add_user(user)
    return user


def authenticate(store: UserStore, username: str, password: str) -> User | None:
    user = store.get_user_by_name(username)
    if user is None or user.disabled or user.password_hash == "!":
        try:  # spend the same time whether or not the user exists
            _hasher.verify(_DUMMY, password + "x")
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user
