"""Trusted JWT issuers: who may sign the JWTs this server accepts as grants, and with which keys.

Two kinds, registered by an operator (``authz trust add``):

- ``idp``: an enterprise identity provider whose Identity Assertion JWT Authorization Grants
  (ID-JAG, the MCP Enterprise-Managed Authorization extension) the jwt-bearer grant accepts;
- ``subject``: an issuer whose JWTs token exchange accepts as ``subject_token`` or ``actor_token``
  (``urn:ietf:params:oauth:token-type:jwt``).

MCP Enterprise-Managed Authorization: the AS "MUST verify the signature against an explicit
algorithm allow-list, and never accept ``none``". Each issuer carries its own allow-list, drawn
from asymmetric algorithms only (no ``none``, no HMAC: a shared secret would let anyone who
verifies also sign). Keys are an inline public JWK Set, or a ``jwks_uri`` fetched with the
SSRF-safe fetcher (:mod:`authz.core.fetch`) and cached for its HTTP cache lifetime; after a failed
fetch the URL is not tried again for 30 seconds and nothing from that issuer verifies.

Issuer records are cached for ``cache_staleness`` seconds, so an operator's change is seen by
every replica within that bound. :meth:`TrustedIssuers.ready` says whether a verification would
be answered from memory (the token endpoint then runs the grant on the event loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from authz.core.crypto import b64url_decode
from authz.core.fetch import MAX_BYTES, Fetcher, FetchError, check_url
from authz.oauth.cimd import CimdError, check_public_jwks
from authz.storage.models import TrustedIssuer
from guard.jsonload import MAX_JWT_PART, load_json

log = logging.getLogger("authz.trust")

KINDS = ("idp", "subject")
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")
DEFAULT_ALGORITHMS = ("ES256", "RS256")
LEEWAY = 30  # seconds of clock skew tolerated on exp / iat / nbf
RETRY_AFTER_FAILURE = 30.0
MAX_CACHED = 10_000


class TrustStore(Protocol):
    def get_trusted_issuer(self, issuer: str) -> TrustedIssuer | None: ...
    def list_trusted_issuers(self) -> Sequence[TrustedIssuer]: ...
    def put_trusted_issuer(self, row: TrustedIssuer) -> None: ...
    def delete_trusted_issuer(self, issuer: str) -> bool: ...


class TrustError(Exception):
    """A JWT that is not acceptable. The message is our own short text, safe to return to the client."""


@dataclass(frozen=True)
class Issuer:
    issuer: str
    kind: str
    algorithms: tuple[str, ...]
    audience: str | None
    jwks: dict[str, Any] | None
    jwks_uri: str | None

    @classmethod
    def from_row(cls, row: TrustedIssuer) -> Issuer:
        return cls(
            issuer=row.issuer,
            kind=row.kind,
            algorithms=tuple(a for a in row.algorithms or () if a in ALGORITHMS),
            audience=row.audience,
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
        )


@dataclass(frozen=True)
class VerifiedJwt:
    issuer: Issuer
    header: dict[str, Any]
    claims: dict[str, Any]


# -- registration -------------------------------------------------------------------------------
def register_issuer(
    store: TrustStore,
    issuer: str,
    kind: str,
    *,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    audience: str | None = None,
    allow_loopback: bool = False,
) -> TrustedIssuer:
    """Validate and store (or replace) a trusted issuer; ValueError says what is wrong."""
    if not issuer or len(issuer) > 2048:
        raise ValueError("the issuer must be a non-empty string")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    algs = list(dict.fromkeys(algorithms))
    bad = [a for a in algs if a not in ALGORITHMS]
    if bad or not algs:
        raise ValueError(f"algorithms must be a non-empty subset of {', '.join(ALGORITHMS)} (got {', '.join(bad)})")
    if (jwks is None) == (jwks_uri is None):
        raise ValueError("give exactly one of jwks (a public JWK Set) or jwks_uri")
    if jwks is not None:
        try:
            check_public_jwks(jwks)
            KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (CimdError, ValueError, JoseError) as exc:
            raise ValueError(f"jwks: {exc}") from exc
    if jwks_uri is not None:
        try:
            check_url(jwks_uri, allow_loopback)
        except FetchError as exc:
            raise ValueError(f"jwks_uri cannot be fetched by this server: {exc.reason}") from exc
    row = TrustedIssuer(
        issuer=issuer,
        kind=kind,
        jwks=jwks,
        jwks_uri=jwks_uri,
        algorithms=algs,
        audience=audience or None,
        created_at=int(time.time()),
    )
    store.put_trusted_issuer(row)
    return row


# -- verification -------------------------------------------------------------------------------
def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, payload) of a compact JWS before verification: only to find whose keys verify it."""
    try:
        head, body, _sig = token.split(".")
        header = load_json(b64url_decode(head), max_bytes=MAX_JWT_PART)
        payload = load_json(b64url_decode(body), max_bytes=MAX_JWT_PART)
    except (ValueError, TypeError) as exc:
        raise TrustError("The token is not a JWT.") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TrustError("The token is not a JWT.")
    return header, payload


def unverified_issuer(token: str) -> str | None:
    try:
        iss = unverified_parts(token)[1].get("iss")
    except TrustError:
        return None
    return iss if isinstance(iss, str) else None


def check_lifetime(claims: dict[str, Any], now: int, max_lifetime: int, *, require_iat: bool) -> None:
    """``exp`` present and in the future (with leeway); ``iat``/``nbf`` not in the future; bounded life."""
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not _is_time(exp):
        raise TrustError("The token has no exp.")
    if exp + LEEWAY <= now:
        raise TrustError("The token has expired.")
    if iat is None and require_iat:
        raise TrustError("The token has no iat.")
    if iat is not None:
        if not _is_time(iat) or iat > now + LEEWAY:
            raise TrustError("The token's iat is invalid.")
        if exp - iat > max_lifetime:
            raise TrustError("The token lives too long.")
    elif exp - now > max_lifetime:
        raise TrustError("The token lives too long.")
    if nbf is not None and (not _is_time(nbf) or nbf > now + LEEWAY):
        raise TrustError("The token is not yet valid.")


def audiences(claims: dict[str, Any]) -> set[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return {aud}
    if isinstance(aud, list):
        return {a for a in aud if isinstance(a, str)}
    return set()


def _is_time(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class _Cached:
    value: Any
    fresh_until: float
    retry_at: float = 0.0


class TrustedIssuers:
    """The registry as the grants see it: cached issuer records and key sets, and JWT verification."""

    def __init__(self, store: TrustStore, fetcher: Fetcher, staleness: float) -> None:
        self._store, self._fetcher, self._staleness = store, fetcher, staleness
        self._issuers: dict[str, _Cached] = {}
        self._keys: dict[str, _Cached] = {}  # issuer -> KeySet (or None after a failure)
        self._lock = threading.Lock()

    def issuer(self, iss: str) -> Issuer | None:
        now = time.monotonic()
        entry = self._issuers.get(iss)
        if entry is not None and now < entry.fresh_until:
            value: Issuer | None = entry.value
            return value
        row = self._store.get_trusted_issuer(iss)
        info = Issuer.from_row(row) if row is not None else None
        with self._lock:
            if len(self._issuers) > MAX_CACHED:
                self._issuers.clear()
            self._issuers[iss] = _Cached(info, now + self._staleness)
            if entry is not None and entry.value != info:
                self._keys.pop(iss, None)  # the record changed: its keys may have too
        return info

    def ready(self, iss: str | None) -> bool:
        """True when verifying a JWT from ``iss`` would not touch the database or the network."""
        if iss is None:
            return True
        now = time.monotonic()
        entry = self._issuers.get(iss)
        if entry is None or now >= entry.fresh_until:
            return False
        info: Issuer | None = entry.value
        if info is None or info.jwks is not None:
            return True
        keys = self._keys.get(iss)
        return keys is not None and (now < keys.fresh_until or now < keys.retry_at)

    def verify(self, token: str, kind: str, typ: str | None = None) -> VerifiedJwt:
        """Signature (allow-listed algorithm, the issuer's keys) of a JWT from a trusted issuer of ``kind``.

        Claims other than ``iss`` are the caller's to check (audience, lifetime, replay).
        """
        header, payload = unverified_parts(token)
        iss = payload.get("iss")
        info = self.issuer(iss) if isinstance(iss, str) and iss else None
        if info is None or info.kind != kind:
            raise TrustError("The token's issuer is not trusted.")
        if typ is not None and _media_type(header.get("typ")) != typ:
            raise TrustError("The token's typ header is wrong.")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in info.algorithms:
            raise TrustError("The token's signing algorithm is not allowed.")
        keyset = self._keyset(info)
        if keyset is None:
            raise TrustError("The issuer's keys are unavailable.")
        try:
            decoded = jwt.decode(token, keyset, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            raise TrustError("The token's signature is invalid.") from exc
        claims = dict(decoded.claims)
        if claims.get("iss") != info.issuer:
            raise TrustError("The token's issuer is not trusted.")
        return VerifiedJwt(info, dict(decoded.header), claims)

    def _keyset(self, info: Issuer) -> KeySet | None:
        now = time.monotonic()
        entry = self._keys.get(info.issuer)
        if entry is not None and (now < entry.fresh_until or now < entry.retry_at):
            value: KeySet | None = entry.value if now < entry.fresh_until else None
            return value
        ttl: float
        if info.jwks is not None:
            jwks, ttl = info.jwks, float("inf")
        elif info.jwks_uri is not None:
            try:
                fetched = self._fetcher.fetch_sync(info.jwks_uri, max_bytes=MAX_BYTES)
                jwks, ttl = check_public_jwks(fetched.data), float(fetched.ttl)
            except (FetchError, CimdError) as exc:
                log.warning("jwks_uri of trusted issuer %s not usable: %s", info.issuer, exc)
                self._put_keys(info.issuer, _Cached(None, 0.0, now + RETRY_AFTER_FAILURE))
                return None
        else:
            return None
        try:
            keyset = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError):
            self._put_keys(info.issuer, _Cached(None, 0.0, now + RETRY_AFTER_FAILURE))
            return None
        self._put_keys(info.issuer, _Cached(keyset, now + ttl))
        return keyset

    def _put_keys(self, iss: str, entry: _Cached) -> None:
        with self._lock:
            if len(self._keys) > MAX_CACHED:
                self._keys.clear()
            self._keys[iss] = entry

    def forget(self, iss: str) -> None:
        with self._lock:
            self._issuers.pop(iss, None)
            self._keys.pop(iss, None)


def _media_type(value: object) -> str:
    """RFC 7515 §4.1.9: ``typ`` may omit the ``application/`` prefix; compare case-insensitively."""
    if not isinstance(value, str):
        return ""
    value = value.lower()
    return value[len("application/") :] if value.startswith("application/") else value
