"""Local human users: argon2id password hashes (slow on purpose; humans pick guessable passwords).

A user's personal data (the name they sign in with, their name and email when given) is also their
profile, written encrypted with their own key when the user is created (``ProfileWriter``: the
``authz.compliance.vault.SubjectVault``), so a GDPR export returns it and erasure crypto-shreds it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authz.storage.models import User
from authz.storage.protocols import UserStore

GROUP_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("timing equaliser")


class ProfileWriter(Protocol):
    def put(self, subject: str, profile: dict[str, Any]) -> None: ...


def create_user(
    store: UserStore,
    username: str,
    password: str | None,
    groups: Sequence[str] = (),
    *,
    profiles: ProfileWriter | None = None,
    profile: Mapping[str, str] | None = None,
) -> User:
    """Add a user. ``password=None`` makes a user who cannot sign in with a password (dev mode only).
    ``groups`` are what scope policies see as the user's ``Authz::Group`` parents. With ``profiles``,
    the user's profile (``username`` and the non-empty ``profile`` fields) is written encrypted."""
    if not username or len(username) > 255:
        raise ValueError("a username is 1-255 characters")
    bad = [g for g in groups if not GROUP_RE.fullmatch(g)]
    if bad:
        raise ValueError(f"group {bad[0]!r}: use 1-64 characters of a-z A-Z 0-9 . _ -")
    user = User(
        id=uuid.uuid4().hex,
        username=username,
        password_hash=_hasher.hash(password) if password else "!",
        created_at=int(time.time()),
        groups=sorted(set(groups)),
    )
    store.add_user(user)
    if profiles is not None:
        profiles.put(user.id, {"username": username, **{k: v for k, v in (profile or {}).items() if v}})
    return user


def set_groups(store: UserStore, username: str, groups: Sequence[str]) -> User:
    """Replace a user's groups. Raises ``LookupError`` (no such user) or ``ValueError`` (a bad group name)."""
    bad = [g for g in groups if not GROUP_RE.fullmatch(g)]
    if bad:
        raise ValueError(f"group {bad[0]!r}: use 1-64 characters of a-z A-Z 0-9 . _ -")
    user = store.get_user_by_name(username)
    if user is None or not store.set_user_groups(user.id, groups):
        raise LookupError(f"no user {username!r} (authz users list shows them)")
    updated = store.get_user(user.id)
    assert updated is not None
    return updated


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
