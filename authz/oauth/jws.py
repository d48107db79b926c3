"""Compact JWS for our own access tokens: sign and verify with ``cryptography`` directly.

RFC 7515 §7.1 compact serialisation: ``BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(sig)``;
RFC 7518 §3.4: an ECDSA signature is the fixed-width big-endian ``R || S`` (64 bytes for ES256).
joserfc stays the library for keys and for every JWT that comes from outside (client assertions,
trusted issuers); on the two hottest paths (issuing and introspecting our own tokens) it costs 2-3x
the signature itself, so this module does only what those paths need: a fixed header per key
(encoded once), an algorithm fixed by the key (never taken from the token), and keys by ``kid``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey

from guard.jsonload import MAX_JWT_PART, load_json

Key = ECKey | RSAKey | OKPKey
_HASHES = {"ES256": (hashes.SHA256, 32), "ES384": (hashes.SHA384, 48), "RS256": (hashes.SHA256, 0)}


def b64e(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64d(data: str | bytes) -> bytes:
    if isinstance(data, str):
        data = data.encode("ascii")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # what json.dumps builds per call


def _json(value: Any) -> bytes:
    return _ENCODE(value).encode("utf-8")


class Signer:
    """Signs payloads under one key with one header (``alg``, ``typ``, ``kid``) encoded once."""

    def __init__(self, key: Key, alg: str, kid: str, typ: str = "at+jwt") -> None:
        self.alg, self.kid = alg, kid
        self._jwk = key
        self._key = key.private_key
        self._prefix = b64e(_json({"alg": alg, "typ": typ, "kid": kid})) + b"."
        ec_hash = _HASHES.get(alg)
        self._ecdsa = ec.ECDSA(ec_hash[0]()) if ec_hash else None  # stateless: built once, not per signature

    def retyped(self, typ: str) -> Signer:
        """The same key under another ``typ`` (e.g. ``secevent+jwt`` for Security Event Tokens)."""
        return Signer(self._jwk, self.alg, self.kid, typ)

    def sign(self, claims: dict[str, Any]) -> str:
        return self.sign_payload(_json(claims))

    def sign_payload(self, payload: bytes) -> str:
        """The compact JWS of an already serialised claims object (UTF-8 JSON)."""
        signing_input = self._prefix + b64e(payload)
        return (signing_input + b"." + b64e(self._signature(signing_input))).decode("ascii")

    def _signature(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            hash_cls, size = _HASHES[self.alg]
            r, s = decode_dss_signature(key.sign(data, self._ecdsa or ec.ECDSA(hash_cls())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        raise TypeError(f"unsupported key type {type(key).__name__}")


@dataclass(frozen=True)
class _Public:
    alg: str
    key: Any


class Verifier:
    """Verifies compact JWS tokens against known public keys; the key's ``alg`` decides the algorithm."""

    def __init__(self, keys: Iterable[tuple[str, str, Key]]) -> None:
        self._keys = {kid: _Public(alg, key.public_key) for kid, alg, key in keys}

    def knows(self, kid: object) -> bool:
        """Whether ``kid`` names one of this verifier's keys."""
        return isinstance(kid, str) and kid in self._keys

    def verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(header, claims) of a token signed by one of our keys, or None for anything else."""
        try:
            head_b64, payload_b64, sig_b64 = token.split(".")
            header = load_json(b64d(head_b64), max_bytes=MAX_JWT_PART)
            kid = header.get("kid") if isinstance(header, dict) else None
            public = self._keys.get(kid) if isinstance(kid, str) else None
            if public is None or header.get("alg") != public.alg:
                return None
            if not self._check(public, (head_b64 + "." + payload_b64).encode("ascii"), b64d(sig_b64)):
                return None
            claims = load_json(b64d(payload_b64), max_bytes=MAX_JWT_PART)
        except (ValueError, UnicodeError, TypeError):
            return None
        return (header, claims) if isinstance(claims, dict) else None

    @staticmethod
    def _check(public: _Public, data: bytes, sig: bytes) -> bool:
        key = public.key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                hash_cls, size = _HASHES[public.alg]
                if len(sig) != 2 * size:
                    return False
                r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
                key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(sig, data)
            else:
                return False
        except InvalidSignature:
            return False
        return True
