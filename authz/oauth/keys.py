"""Signing keys: generation, encryption at rest, rotation, and the published JWKS.

Lifecycle of a key: ``next`` (published, not yet signing) -> ``active`` (signs new tokens) ->
``retired`` (still published until every token it signed has expired, plus an overlap) -> removed
from the JWKS. A rotation promotes the ``next`` key, so every key is published before it signs and
resource servers that cached the JWKS already know it. Private keys are stored AES-GCM encrypted
under the key-encryption key (``authz.core.crypto.Keyring``), bound to their ``kid``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey

from authz.core.crypto import Keyring
from authz.oauth.jws import Signer, Verifier
from authz.storage.models import SigningKey
from authz.storage.protocols import KeyStore

Key = ECKey | RSAKey | OKPKey


def _generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    if alg == "ES384":
        return ECKey.generate_key("P-384", auto_kid=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", auto_kid=True)
    raise ValueError(f"unsupported signing algorithm {alg}")


def _import(alg: str, pem: bytes) -> Key:
    if alg.startswith("ES"):
        return ECKey.import_key(pem)
    if alg == "RS256":
        return RSAKey.import_key(pem)
    return OKPKey.import_key(pem)


def new_key_row(alg: str, status: str, keyring: Keyring, now: int) -> SigningKey:
    key = _generate(alg)
    kid = str(key.kid)
    public = dict(key.as_dict(private=False))
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    blob = keyring.encrypt(key.as_pem(private=True), kid.encode())
    activated = now if status == "active" else None
    return SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=public,
        private_encrypted=blob,
        status=status,
        created_at=now,
        activated_at=activated,
    )


@dataclass(frozen=True)
class KeyView:
    """An immutable snapshot: the key that signs now, and the public keys to publish and verify with.

    ``verified`` memoises signature checks of our own tokens for this snapshot (a token introspected
    again costs a dictionary lookup); a new snapshot after any key change starts empty.
    """

    signing_kid: str
    signing_alg: str
    signer: Signer
    verifier: Verifier
    jwks: dict[str, Any]
    verified: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)


class KeyManager:
    """Holds the current :class:`KeyView`; reloads it from the store when keys change."""

    def __init__(self, store: KeyStore, keyring: Keyring, alg: str) -> None:
        self._store, self._keyring, self._alg = store, keyring, alg
        self._lock = threading.Lock()
        self._view: KeyView | None = None

    @property
    def view(self) -> KeyView:
        view = self._view
        if view is None:
            view = self.reload()
        return view

    def ensure(self) -> None:
        """Bootstrap: make sure one active and one next key exist (first start)."""
        rows = self._store.list_keys()
        now = int(time.time())
        if not any(r.status == "active" for r in rows):
            self._store.put_key(new_key_row(self._alg, "active", self._keyring, now))
        if not any(r.status == "next" for r in rows):
            self._store.put_key(new_key_row(self._alg, "next", self._keyring, now))
        self.reload()

    def reload(self) -> KeyView:
        with self._lock:
            now = int(time.time())
            rows = self._store.list_keys()
            active = [r for r in rows if r.status == "active"]
            if not active:
                raise RuntimeError("no active signing key: run `authz keys rotate` or start `authz serve` once")
            current = max(active, key=lambda r: (r.activated_at or 0, r.kid))
            published = [r for r in rows if _published(r, now)]
            private = _import(current.alg, self._keyring.decrypt(current.private_encrypted, current.kid.encode()))
            self._view = KeyView(
                signing_kid=current.kid,
                signing_alg=current.alg,
                signer=Signer(private, current.alg, current.kid),
                verifier=Verifier((r.kid, r.alg, _import_public(r)) for r in published),
                jwks={"keys": [dict(r.public_jwk) for r in published]},
            )
            return self._view

    def rotate(self, retire_after: int) -> tuple[str, str]:
        """Promote ``next`` to ``active``, retire the old active key, and create a new ``next``.

        ``retire_after`` is how long the retired key stays published (token lifetime + overlap).
        Returns (new active kid, new next kid).
        """
        now = int(time.time())
        rows = list(self._store.list_keys())
        nxt = [r for r in rows if r.status == "next"]
        changed: list[SigningKey] = []
        if nxt:
            promoted = nxt[0]
        else:  # no published successor (older database): generate one; it signs at once
            promoted = new_key_row(self._alg, "next", self._keyring, now)
            self._store.put_key(promoted)
        for r in rows:
            if r.status == "active":
                r.status, r.retired_at, r.publish_until = "retired", now, now + retire_after
                changed.append(r)
        promoted.status, promoted.activated_at = "active", now
        changed.append(promoted)
        self._store.update_keys(changed)
        successor = new_key_row(self._alg, "next", self._keyring, now)
        self._store.put_key(successor)
        self.reload()
        return promoted.kid, successor.kid


def _published(row: SigningKey, now: int) -> bool:
    if row.status in ("active", "next"):
        return True
    return row.status == "retired" and (row.publish_until or 0) > now


def _import_public(row: SigningKey) -> Key:
    data = {k: v for k, v in row.public_jwk.items() if k not in ("use",)}
    kty = data["kty"]
    if kty == "EC":
        return ECKey.import_key(data)
    if kty == "RSA":
        return RSAKey.import_key(data)
    return OKPKey.import_key(data)


def published_kids(rows: Sequence[SigningKey], now: int) -> list[str]:
    return [r.kid for r in rows if _published(r, now)]
