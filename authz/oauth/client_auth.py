"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

RFC 7523 §3: the JWT "MUST contain an 'iss' (issuer) claim" and "a 'sub' (subject) claim" — for
client authentication both are the client_id (§3 item 2.B); it "MUST contain an 'aud' (audience)
claim containing a value that identifies the authorization server as an intended audience" (the
token endpoint URL or the issuer identifier); it "MUST contain an 'exp' (expiration time) claim";
and "the authorization server MAY ensure that JWTs are not replayed by maintaining the set of used
'jti' values for the length of time for which the JWT would be considered valid" — we always do.
Algorithms come from an allow-list of asymmetric algorithms; ``none`` and HMAC are never accepted.

The common assertion — a header of ``alg``/``kid``/``typ`` only, a ``kid`` naming one signing key
of the client, ES256, EdDSA/Ed25519 or RS256 — is verified with ``cryptography`` directly (the
header parsed once, the payload once, the public keys once per JWKS document); joserfc verifies
every other one. Either way the claims checks below are the same, and the ``jti`` is remembered
last: at once on the generic path, or with concurrent requests' (group commit) on the token
endpoint's fast path (:meth:`PrivateKeyJwt.verify`, then :meth:`PrivateKeyJwt.first_use`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from authlib.oauth2.rfc6749.errors import InvalidClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from authz.core.crypto import b64url_decode
from authz.identity.clients import OAuthClient
from authz.oauth.group_commit import GroupCommit
from authz.oauth.jws import b64d
from authz.oauth.replay import ReplayCache
from guard.jsonload import MAX_JWT_PART, load_json

log = logging.getLogger("authz.client_auth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519"]
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
FAST_HEADER = frozenset({"alg", "kid", "typ"})
LEEWAY = 30
MAX_LIFETIME = 3600
_ES256, _EDDSA, _RS256 = frozenset({"ES256"}), frozenset({"EdDSA", "Ed25519"}), frozenset({"RS256"})
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # stateless: built once, not per assertion
_PKCS1V15, _SHA256 = padding.PKCS1v15(), hashes.SHA256()


class AssertionRequest(Protocol):
    """What client authentication reads (the form) and writes (why it failed, for the audit trail)."""

    @property
    def form(self) -> Mapping[str, str]: ...

    auth_failure: str | None


class Jti(NamedTuple):
    """A verified assertion's replay-cache entry: remembered until ``expires_at`` (RFC 7523 §3)."""

    key: str
    expires_at: int
    now: int


class PrivateKeyJwt:
    """Authlib client-auth callable: ``(query_client, request) -> client | None``. The token endpoint's
    fast path calls :meth:`verify` and then awaits :meth:`first_use` (group commit) instead."""

    def __init__(
        self,
        audiences: frozenset[str],
        replay: ReplayCache,
        jwks_for: Callable[[OAuthClient], dict[str, Any] | None],
    ) -> None:
        self._audiences, self._replay, self._jwks_for = audiences, replay, jwks_for
        self._keysets: dict[str, tuple[dict[str, Any], KeySet, _FastKeys]] = {}  # client_id -> (jwks, parsed)
        self._group: GroupCommit | None = None  # the replay cache's group commit, made on first use

    def __call__(
        self, query_client: Callable[[str], OAuthClient | None], request: AssertionRequest
    ) -> OAuthClient | None:
        form = request.form
        assertion = form.get("client_assertion")
        if not assertion or form.get("client_assertion_type") != ASSERTION_TYPE:
            return None
        client_id = unverified_issuer(assertion)
        if form.get("client_id") not in (None, client_id):
            raise _invalid("client_id does not match the client assertion.")
        client = query_client(client_id)
        jti = self.verify(client, assertion, request)
        if not self._replay.first_use(*jti):
            request.auth_failure = "client_assertion_replay"
            raise _invalid("The client assertion was already used.")
        return client

    def verify(self, client: OAuthClient | None, assertion: str, request: AssertionRequest) -> Jti:
        """Every check of ``client``'s assertion but the replay cache's (the caller asks it last)."""
        if client is None or not client.check_endpoint_auth_method("private_key_jwt", "token"):
            raise _invalid("The client cannot authenticate with private_key_jwt.")
        client_id = client.client_id
        jwks = self._jwks_for(client)
        if not jwks:
            raise _invalid("The client has no registered keys.")
        keyset, fast = self._keyset(client_id, jwks)
        try:
            claims = fast.claims(assertion)
            if claims is None:
                claims = dict(jwt.decode(assertion, keyset, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError) as exc:
            request.auth_failure = "client_assertion_invalid"
            raise _invalid("The client assertion is invalid.") from exc
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _invalid("The client assertion's iss and sub must be the client_id.")
        return self._check_claims(claims)

    async def first_use(self, jti: Jti) -> bool:
        """The replay check of :meth:`verify`'s answer (False: a replay), written with concurrent
        requests' (one multi-row upsert or Redis pipeline per batch: :mod:`authz.oauth.group_commit`)."""
        group = self._group
        if group is None:
            group = self._group = self._replay.group_commit()
        return await group.first_use(*jti)

    def close(self) -> None:
        """Write the group commit's queued keys and stop its writer (the server is stopping)."""
        group, self._group = self._group, None
        if group is not None:
            group.close()

    def _keyset(self, client_id: str, jwks: dict[str, Any]) -> tuple[KeySet, _FastKeys]:
        """Parsed keys, cached while the client's JWKS document is the same object (parsing costs more)."""
        cached = self._keysets.get(client_id)
        if cached is not None and cached[0] is jwks:
            return cached[1], cached[2]
        keyset = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        if len(self._keysets) > 10_000:
            self._keysets.clear()
        self._keysets[client_id] = (jwks, keyset, _FastKeys(keyset))
        return keyset, self._keysets[client_id][2]

    def _check_claims(self, claims: dict[str, Any]) -> Jti:
        now = int(time.time())
        aud = claims.get("aud")
        auds = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
        if not auds & self._audiences:
            raise _invalid("The client assertion's audience is not this server.")
        exp, jti = claims.get("exp"), claims.get("jti")
        if not isinstance(exp, int | float) or exp + LEEWAY < now:
            raise _invalid("The client assertion has expired.")
        if exp > now + MAX_LIFETIME:
            raise _invalid("The client assertion lives too long.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + LEEWAY:
            raise _invalid("The client assertion is not yet valid.")
        if not isinstance(jti, str) or not jti:
            raise _invalid("The client assertion needs a jti.")
        return Jti(f"client_assertion|{claims['iss']}|{jti}", int(exp) + LEEWAY, now)


class _FastKeys:
    """The client's signing keys that :meth:`claims` verifies with ``cryptography`` directly: a unique
    ``kid``, no ``key_ops``, ``use`` absent or ``sig``, and ``alg`` absent or one the key's type and
    curve allow — ES256 (EC P-256), EdDSA or Ed25519 (OKP Ed25519, RFC 8037 and RFC 9864), RS256
    (RSA). What joserfc accepts for those keys and algorithms (``KeySet.get_by_kid``,
    ``JWSAlgModel.check_key`` and ``verify``); other keys and algorithms are left to joserfc."""

    __slots__ = ("_keys",)

    def __init__(self, keyset: KeySet) -> None:
        kids = [key.kid for key in keyset.keys]
        self._keys: dict[str, tuple[frozenset[str], Any]] = {}  # kid -> (header algs, public key)
        for key in keyset.keys:
            if not key.kid or kids.count(key.kid) != 1 or key.get("use") not in (None, "sig"):
                continue
            public = key.public_key
            if key.get("key_ops") is not None:
                continue
            if isinstance(key, ECKey) and key.get("crv") == "P-256" and isinstance(public, ec.EllipticCurvePublicKey):
                algs = _ES256
            elif isinstance(key, OKPKey) and key.get("crv") == "Ed25519" and isinstance(public, Ed25519PublicKey):
                algs = _EDDSA
            elif isinstance(key, RSAKey) and isinstance(public, rsa.RSAPublicKey):
                algs = _RS256
            else:
                continue
            designed = key.get("alg")
            if designed is None or designed in algs:
                self._keys[key.kid] = (algs if designed is None else frozenset({designed}), public)

    def claims(self, assertion: str) -> dict[str, Any] | None:
        """The claims of an assertion whose header is ``alg``/``kid``/``typ`` only (``kid`` and ``typ``
        strings) and whose ``alg`` the key ``kid`` names allows; None for any other (joserfc decides
        those). Raises ``ValueError`` when the signature does not verify or the payload is not a JSON
        object. The header is parsed once; the payload was parsed by :func:`unverified_issuer`."""
        if COMPACT_JWS.fullmatch(assertion) is None:
            return None
        head, payload, sig = assertion.split(".")
        header = load_json(b64d(head), max_bytes=MAX_JWT_PART)
        if not isinstance(header, dict) or header.keys() - FAST_HEADER or not isinstance(header.get("typ", ""), str):
            return None
        kid, alg = header.get("kid"), header.get("alg")
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        if entry is None or alg not in entry[0]:
            return None
        if not _verify(alg, entry[1], (head + "." + payload).encode("ascii"), b64d(sig)):
            raise ValueError("the client assertion's signature does not verify")
        claims = _unverified_claims(assertion)
        if not isinstance(claims, dict):
            raise ValueError("the client assertion's payload is not a JSON object")
        return claims


def _verify(alg: str, key: Any, data: bytes, sig: bytes) -> bool:
    """RFC 7518 §3.4 (ES256: ``R || S``, 32 bytes each), RFC 8037 §3.1 (EdDSA), RFC 7518 §3.3 (RS256)."""
    try:
        if alg == "ES256":
            if len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, data, _ECDSA_SHA256)
        elif alg == "RS256":
            key.verify(sig, data, _PKCS1V15, _SHA256)
        else:  # EdDSA, Ed25519
            key.verify(sig, data)
    except InvalidSignature:
        return False
    return True


def _invalid(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


@functools.lru_cache(maxsize=256)
def _unverified_claims(assertion: str) -> Any:
    """The payload of a compact JWS, parsed before verification (remembered for the last few
    assertions: a token request reads it to find the client, then again once the signature verifies)."""
    try:
        return load_json(b64url_decode(assertion.split(".")[1]), max_bytes=MAX_JWT_PART)
    except (IndexError, ValueError) as exc:
        raise _invalid("The client assertion is not a JWT.") from exc


def unverified_issuer(assertion: str) -> str:
    """The ``iss`` of a compact JWS before verification, only to find whose keys verify it."""
    payload = _unverified_claims(assertion)
    iss = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(iss, str) or not iss:
        raise _invalid("The client assertion has no issuer.")
    return iss
