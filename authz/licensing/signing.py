"""The Ed25519 keys that sign validation responses and license files, published as a JWK Set.

Asymmetric on purpose: clients hold only the public key (RFC 8037 ``OKP``/``Ed25519`` JWKs), so no
client can forge an answer, unlike HMAC with a key shared with every client. Private keys are kept
encrypted with the key-encryption key (AES-GCM, the ``kid`` as associated data). The ``kid`` is the
RFC 7638 thumbprint. One key is active (signs); retired keys stay published so files they signed
keep verifying until they expire.

Every signature is over a domain-separated message, so a signature of one kind never verifies as
another: ``response/`` + body bytes (HTTP answers), ``license/`` + enc and ``machine/`` + enc (files,
as Keygen).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import Engine, Table, select, update

from authz.core.crypto import Keyring, b64url
from authz.storage.models.licensing import LicenseSigningKeyRow

SIGNATURE_HEADER = "Authz-Signature"
KEYS = cast(Table, LicenseSigningKeyRow.__table__)


def public_jwk(private: Ed25519PrivateKey) -> dict[str, str]:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    thumb = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**jwk, "kid": b64url(thumb), "alg": "EdDSA", "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()

    def header(self, body: bytes) -> str:
        """``Authz-Signature`` of a response body."""
        sig = self.sign(b"response/" + body)
        return f'keyid="{self.kid}", algorithm="ed25519", signature="{sig}"'


class LicenseKeys:
    """Loads (or creates, once) the active signing key; ``rotate`` makes a new one active."""

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self._engine, self._keyring = engine, keyring
        self._lock = threading.Lock()
        self._active: SigningKey | None = None
        self._jwks: dict[str, Any] | None = None

    def active(self) -> SigningKey:
        key = self._active
        if key is None:
            with self._lock:
                if self._active is None:
                    self._load()
                key = self._active
        assert key is not None
        return key

    def jwks(self) -> dict[str, Any]:
        self.active()
        assert self._jwks is not None
        return self._jwks

    def reload(self) -> None:
        with self._lock:
            self._active = None
            self._load()

    def rotate(self) -> str:
        with self._lock, self._engine.begin() as conn:
            conn.execute(update(KEYS).values(active=False))
            kid = self._insert(conn)
            self._active = None
        self.reload()
        return kid

    def _insert(self, conn: Any) -> str:
        private = Ed25519PrivateKey.generate()
        jwk = public_jwk(private)
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        conn.execute(
            KEYS.insert().values(
                kid=jwk["kid"],
                public_jwk=jwk,
                private_encrypted=self._keyring.encrypt(raw, f"license-key:{jwk['kid']}".encode()),
                active=True,
                created_at=int(time.time()),
            )
        )
        return jwk["kid"]

    def _load(self) -> None:
        table = KEYS
        with self._engine.begin() as conn:
            rows = conn.execute(select(table).order_by(table.c.created_at, table.c.kid)).all()
            if not any(r.active for r in rows):
                self._insert(conn)
                rows = conn.execute(select(table).order_by(table.c.created_at, table.c.kid)).all()
        active = [r for r in rows if r.active][-1]  # two replicas racing at first start: the newest wins
        raw = self._keyring.decrypt(active.private_encrypted, f"license-key:{active.kid}".encode())
        self._active = SigningKey(active.kid, Ed25519PrivateKey.from_private_bytes(raw))
        self._jwks = {"keys": [dict(r.public_jwk) for r in rows]}
