"""Stateless server nonces for DPoP (RFC 9449 §8 and §9): an AEAD-encrypted timestamp.

RFC 9449 §8: "An authorization server MAY supply a nonce value to be included by the client in
DPoP proofs sent. [...] the authorization server responds with an HTTP 400 (Bad Request) [...]
with "use_dpop_nonce" as the error code value [...] and a DPoP-Nonce HTTP header field"; §8.2:
"The authorization server MAY supply the new nonce in the same way as the initial one: by using
the DPoP-Nonce HTTP response header field". §9 gives protected resources the same mechanism with
a 401 and ``WWW-Authenticate: DPoP error="use_dpop_nonce"``. SEP-1932: "stateless servers may
issue nonces as AEAD-encrypted timestamps" — so every replica that shares the key accepts the
nonces of every other replica, with no shared store. The value is ``base64url(iv || AES-GCM(ts))``
(RFC 7518 §5.2-style authenticated encryption), opaque to clients; a nonce is good for ``ttl``
seconds and a fresh one is offered once half of that has passed (rotation).

Replica-bound nonces (``replica=``): the plaintext also names the issuing replica (a random id per
process, changed by :meth:`NonceIssuer.new_replica_id`), and only that replica accepts them. A proof
is then acceptable at one replica only, so that replica's in-memory ``jti`` cache is enough for
RFC 9449 §11.1 ("the server MUST only accept the proof once") across every replica.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["NonceIssuer"]

_AAD = b"dpop-nonce v1"
_AAD_REPLICA = b"dpop-nonce v1 replica"
_SKEW = 5  # a nonce "from the future" by more than this is refused (another replica's clock)


class NonceIssuer:
    def __init__(
        self, key: bytes, *, ttl: int = 300, clock: Callable[[], float] = time.time, replica: bool = False
    ) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("the nonce key must be 16, 24 or 32 bytes")
        if ttl < 10:
            raise ValueError("the nonce lifetime must be at least 10 seconds")
        self._aead = AESGCM(key)
        self.ttl = ttl
        self._clock = clock
        self._current: tuple[int, str] | None = None  # (issued at, value): one nonce per half-ttl
        self._replica: bytes | None = os.urandom(8) if replica else None

    def new_replica_id(self) -> None:
        """Replica-bound nonces: take a new id; every nonce handed out before is refused from now on."""
        assert self._replica is not None, "not a replica-bound issuer"
        self._replica = os.urandom(8)
        self._current = None

    def issue(self) -> str:
        """The nonce to hand out now (the same value for ``ttl / 2`` seconds, then a new one)."""
        now = int(self._clock())
        current = self._current
        if current is not None and now - current[0] < self.ttl // 2:
            return current[1]
        iv = os.urandom(12)
        stamp = struct.pack(">Q", now)
        sealed = (
            self._aead.encrypt(iv, stamp, _AAD)
            if self._replica is None
            else self._aead.encrypt(iv, stamp + self._replica, _AAD_REPLICA)
        )
        value = base64.urlsafe_b64encode(iv + sealed)
        self._current = (now, value.rstrip(b"=").decode("ascii"))
        return self._current[1]

    def issued_at(self, nonce: str) -> int | None:
        """When a nonce of ours was issued; None when it is not ours (or tampered with, or, when
        replica-bound, issued by another replica or under an earlier replica id)."""
        if len(nonce) > 64:
            return None
        replica = self._replica
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
            if len(raw) != 12 + 8 + (0 if replica is None else 8) + 16:
                return None
            plain = self._aead.decrypt(raw[:12], raw[12:], _AAD if replica is None else _AAD_REPLICA)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if replica is not None and plain[8:] != replica:
            return None
        (stamp,) = struct.unpack(">Q", plain[:8])
        return int(stamp)

    def valid(self, nonce: str | None) -> bool:
        """RFC 9449 §4.3 check 10: the proof carries a nonce we issued that has not expired."""
        if nonce is None:
            return False
        current = self._current  # nearly every proof carries the nonce handed out now: no decryption
        stamp = current[0] if current is not None and nonce == current[1] else self.issued_at(nonce)
        if stamp is None:
            return False
        age = self._clock() - stamp
        return -_SKEW <= age <= self.ttl
