"""Secrets at rest: keyed digests for high-entropy values, AES-GCM for signing keys.

Client secrets, authorization codes and refresh tokens are random values of 256 bits, so a keyed
SHA-256 (HMAC) digest is the right store: a leaked table reveals nothing and a lookup costs
microseconds. Slow password hashes (argon2id, ``authz.passwords``) are for human passwords only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_BYTES = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_token(nbytes: int = 32) -> str:
    """A fresh random token (256 bits by default), URL-safe."""
    return secrets.token_urlsafe(nbytes)


def generate_kek() -> str:
    return b64url(os.urandom(KEK_BYTES))


class Keyring:
    """The key-encryption key and the keys derived from it (one per purpose)."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise ValueError("the key-encryption key must be 32 bytes (base64url)")
        self._digest_key = hmac.new(kek, b"authz digest v1", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(kek, b"authz key-encryption v1", hashlib.sha256).digest())

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        return cls(b64url_decode(text.strip()))

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for one purpose (e.g. the audit checkpoint signing seed), stable for this KEK."""
        return hmac.new(self._digest_key, b"authz derive v1 " + purpose, hashlib.sha256).digest()

    def digest(self, value: str) -> str:
        """Keyed digest of a secret, code or token: what the database stores instead of the value."""
        return hmac.digest(self._digest_key, value.encode("utf-8"), "sha256").hex()  # = hmac.new(...).hexdigest()

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], context)


def load_or_create_kek(configured: str, data_dir: Path) -> str:
    """The configured KEK, or (loopback development) one kept in ``data_dir/kek`` with mode 0600."""
    if configured:
        return configured
    path = data_dir / "kek"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    kek = generate_kek()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(kek + "\n")
    return kek
