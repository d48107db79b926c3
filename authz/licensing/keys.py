"""The license key format: 160 random bits and a checksum, written ``LK-XXXXXX-XXXXXX-...``.

A key is 36 base32 characters (RFC 4648 alphabet) after the ``LK`` prefix: 32 carry 20 random bytes
(``secrets``), 4 are a checksum (the first 20 bits of SHA-256 over the body), so a mistyped key is
refused without touching the database. Input is normalised (case, dashes, spaces) before anything
else. The server stores only :func:`key_digest` (a keyed HMAC-SHA-256, ``authz.core.crypto``); the
canonical text is what license files are encrypted with (SHA-256 of it, as Keygen does).
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from authz.core.crypto import Keyring

PREFIX = "LK"
BODY_CHARS = 32
CHECK_CHARS = 4
GROUP = 6
MAX_INPUT = 128  # anything longer is refused before it is even normalised
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


class MalformedKey(ValueError):
    """Not a license key: wrong shape or checksum. Safe to show (it never echoes the input)."""


def _checksum(body: str) -> str:
    """The first 20 bits of SHA-256 in base32 (base32 works in 5-byte groups: 5 bytes give 8 characters)."""
    return base64.b32encode(hashlib.sha256(f"authz-license:{body}".encode()).digest()[:5])[:CHECK_CHARS].decode()


def _grouped(chars: str) -> str:
    return "-".join([PREFIX, *(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))])


def generate_key() -> str:
    """A new key in its canonical, grouped form."""
    body = base64.b32encode(secrets.token_bytes(20)).decode()
    return _grouped(body + _checksum(body))


def normalize(text: str) -> str:
    """The canonical form of a key as typed (any case, dashes and spaces anywhere), or MalformedKey."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise MalformedKey("the key is not a license key (too long or not text)")
    compact = "".join(text.split()).replace("-", "").upper()
    if not compact.startswith(PREFIX) or len(compact) != len(PREFIX) + BODY_CHARS + CHECK_CHARS:
        raise MalformedKey("the key is not a license key (expected LK- followed by 36 characters)")
    chars = compact[len(PREFIX) :]
    if not set(chars) <= _ALPHABET:
        raise MalformedKey("the key is not a license key (characters outside A-Z and 2-7)")
    if not secrets.compare_digest(_checksum(chars[:BODY_CHARS]), chars[BODY_CHARS:]):
        raise MalformedKey("the key is not a license key (its checksum does not match; mistyped?)")
    return _grouped(chars)


def key_digest(keyring: Keyring, canonical: str) -> str:
    """What the database stores and looks keys up by."""
    return keyring.digest("license-key:" + canonical)
