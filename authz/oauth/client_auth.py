"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

RFC 7523 §3: the JWT "MUST contain an 'iss' (issuer) claim" and "a 'sub' (subject) claim" — for
client authentication both are the client_id (§3 item 2.B); it "MUST contain an 'aud' (audience)
claim containing a value that identifies the authorization server as an intended audience" (the
token endpoint URL or the issuer identifier); it "MUST contain an 'exp' (expiration time) claim";
and "the authorization server MAY ensure that JWTs are not replayed by maintaining the set of used
'jti' values for the length of time for which the JWT would be considered valid" — we always do.
Algorithms come from an allow-list of asymmetric algorithms; ``none`` and HMAC are never accepted.

The common assertion — ES256, a header of ``alg``/``kid``/``typ`` only, a ``kid`` naming one P-256
signing key of the client — is verified with ``cryptography`` directly (:mod:`authz.oauth.jws`'s
check, the key parsed once per JWKS document); joserfc verifies every other one. Either way the
claims checks below are the same.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from authlib.oauth2.rfc6749.errors import InvalidClientError
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from authz.core.crypto import b64url_decode
from authz.identity.clients import OAuthClient
from authz.oauth.jws import Verifier, b64d
from authz.oauth.replay import ReplayCache
from guard.jsonload import MAX_JWT_PART, load_json

log = logging.getLogger("authz.client_auth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519"]
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
FAST_HEADER = frozenset({"alg", "kid", "typ"})
LEEWAY = 30
MAX_LIFETIME = 3600


class AssertionRequest(Protocol):
    """What client authentication reads (the form) and writes (why it failed, for the audit trail)."""

    @property
    def form(self) -> Mapping[str, str]: ...

    auth_failure: str | None


class PrivateKeyJwt:
    """Authlib client-auth callable: ``(query_client, request) -> client | None``."""

    def __init__(
        self,
        audiences: frozenset[str],
        replay: ReplayCache,
        jwks_for: Callable[[OAuthClient], dict[str, Any] | None],
    ) -> None:
        self._audiences, self._replay, self._jwks_for = audiences, replay, jwks_for
        self._keysets: dict[str, tuple[dict[str, Any], KeySet, Verifier]] = {}  # client_id -> (jwks, parsed)

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
        if client is None or not client.check_endpoint_auth_method("private_key_jwt", "token"):
            raise _invalid("The client cannot authenticate with private_key_jwt.")
        jwks = self._jwks_for(client)
        if not jwks:
            raise _invalid("The client has no registered keys.")
        keyset, fast = self._keyset(client_id, jwks)
        try:
            claims = _fast_claims(assertion, fast)
            if claims is None:
                claims = dict(jwt.decode(assertion, keyset, algorithms=ALGORITHMS).claims)
        except (JoseError, ValueError) as exc:
            request.auth_failure = "client_assertion_invalid"
            raise _invalid("The client assertion is invalid.") from exc
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _invalid("The client assertion's iss and sub must be the client_id.")
        self._check_claims(claims, request)
        return client

    def _keyset(self, client_id: str, jwks: dict[str, Any]) -> tuple[KeySet, Verifier]:
        """Parsed keys, cached while the client's JWKS document is the same object (parsing costs more)."""
        cached = self._keysets.get(client_id)
        if cached is not None and cached[0] is jwks:
            return cached[1], cached[2]
        keyset = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        if len(self._keysets) > 10_000:
            self._keysets.clear()
        self._keysets[client_id] = (jwks, keyset, _fast_verifier(keyset))
        return keyset, self._keysets[client_id][2]

    def _check_claims(self, claims: dict[str, Any], request: AssertionRequest) -> None:
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
        if not self._replay.first_use(f"client_assertion|{claims['iss']}|{jti}", int(exp) + LEEWAY, now):
            request.auth_failure = "client_assertion_replay"
            raise _invalid("The client assertion was already used.")


def _fast_verifier(keyset: KeySet) -> Verifier:
    """The client's P-256 signing keys with a unique ``kid`` (no ``key_ops``; ``use`` absent or ``sig``;
    ``alg`` absent or ES256), for :func:`_fast_claims`."""
    kids = [key.kid for key in keyset.keys]
    keys = [
        (key.kid, "ES256", key)
        for key in keyset.keys
        if isinstance(key, ECKey)
        and key.kid
        and kids.count(key.kid) == 1
        and key.get("crv") == "P-256"
        and key.get("alg") in (None, "ES256")
        and key.get("use") in (None, "sig")
        and key.get("key_ops") is None
        and isinstance(key.public_key, ec.EllipticCurvePublicKey)
    ]
    return Verifier(keys)


def _fast_claims(assertion: str, fast: Verifier) -> dict[str, Any] | None:
    """The claims of an ES256 assertion whose header is ``alg``/``kid``/``typ`` only and whose ``kid``
    is one of ``fast``'s keys; None for any other assertion (joserfc decides those). Raises
    ``ValueError`` when the signature does not verify or the payload is not a JSON object."""
    if COMPACT_JWS.fullmatch(assertion) is None:
        return None
    head = assertion[: assertion.index(".")]
    header = load_json(b64d(head), max_bytes=MAX_JWT_PART)
    if not isinstance(header, dict) or header.keys() - FAST_HEADER or header.get("alg") != "ES256":
        return None
    if not fast.knows(header.get("kid")):
        return None
    verified = fast.verify(assertion)
    if verified is None:
        raise ValueError("the client assertion's signature does not verify")
    return verified[1]


def _invalid(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


@functools.lru_cache(maxsize=256)
def unverified_issuer(assertion: str) -> str:
    """The ``iss`` of a compact JWS before verification, only to find whose keys verify it. Remembered
    for the last few assertions: a token request asks twice (may it run inline; whose keys verify it)."""
    try:
        payload = load_json(b64url_decode(assertion.split(".")[1]), max_bytes=MAX_JWT_PART)
    except (IndexError, ValueError) as exc:
        raise _invalid("The client assertion is not a JWT.") from exc
    iss = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(iss, str) or not iss:
        raise _invalid("The client assertion has no issuer.")
    return iss
