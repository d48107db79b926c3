"""Access tokens as RFC 9068 JWTs, and refresh tokens as random values stored by digest.

RFC 9068 §2.1: access tokens "MUST include" ``typ`` "at+jwt" in the header; §2.2 requires
``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat`` and ``jti`` claims, and ``scope`` when
the request had one (§2.2.3). ``aud`` is exactly the RFC 8707 resource the token is for.
Delegation chains travel in ``act`` (RFC 8693 §4.1); ``agent``, ``team`` and ``workflow`` identify
who spends for budgets and attribution; ``sid`` names the grant (refresh family) the token belongs to.
A DPoP-bound token carries ``cnf.jkt`` (RFC 9449 §6.1: "the base64url encoding [...] of the JWK
SHA-256 Thumbprint [...] of the DPoP public key [...] to which the access token is bound").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from authz.core.crypto import Keyring, new_token
from authz.oauth.keys import KeyManager
from authz.storage.models import RefreshToken
from authz.storage.protocols import GrantStore

VERIFIED_CACHE_SIZE = 50_000  # memoised signature checks per key snapshot


def new_jti() -> str:
    """A fresh ``jti``: what ``uuid.uuid4().hex`` gives (122 random bits, version 4, RFC 4122 variant),
    without building a ``UUID`` object."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


@dataclass(frozen=True)
class TokenRequest:
    """Everything an issued token says. Grants build one; the issuer signs it."""

    client_id: str
    subject: str
    resource: str
    scope: str
    lifetime: int
    grant_id: str | None = None
    act: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    jkt: str | None = None  # DPoP: the access token is bound to this key thumbprint (cnf.jkt)
    refresh_jkt: str | None = None  # DPoP: the refresh token is bound too (public clients, RFC 9449 §5)

    def bound_to(self, jkt: str) -> TokenRequest:
        """A copy whose access token is bound to ``jkt`` (``dataclasses.replace`` without its field walk:
        every DPoP token request makes one)."""
        copy = object.__new__(TokenRequest)
        copy.__dict__.update(self.__dict__, jkt=jkt)
        return copy


class TokenIssuer:
    def __init__(self, issuer: str, keys: KeyManager, keyring: Keyring, grants: GrantStore) -> None:
        self.issuer, self._keys, self._keyring, self._grants = issuer, keys, keyring, grants

    def access_token(self, req: TokenRequest, now: int | None = None) -> tuple[str, dict[str, Any]]:
        claims = self.claims(req, int(time.time()) if now is None else now, new_jti())
        return self._keys.view.signer.sign(claims), claims

    def sign_payload(self, payload: bytes) -> str:
        """Sign claims already serialised as :func:`authz.oauth.jws.Signer.sign` would serialise them."""
        return self._keys.view.signer.sign_payload(payload)

    def claims(self, req: TokenRequest, now: int, jti: str) -> dict[str, Any]:
        """The claims of the access token for ``req``, in the order they are serialised."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": req.subject,
            "aud": req.resource,
            "client_id": req.client_id,
            "iat": now,
            "exp": now + req.lifetime,
            "jti": jti,
        }
        if req.scope:
            claims["scope"] = req.scope
        if req.grant_id:
            claims["sid"] = req.grant_id
        if req.act:
            claims["act"] = req.act
        claims.update(req.extra)
        if req.jkt:
            claims["cnf"] = {"jkt": req.jkt}
        return claims

    def refresh_token(self, req: TokenRequest, lifetime: int, family_expires_at: int, now: int | None = None) -> str:
        """A new refresh token in the grant's family; never outlives the family."""
        assert req.grant_id, "refresh tokens belong to a grant"
        now = int(time.time()) if now is None else now
        value = new_token()
        self._grants.save_refresh_token(
            RefreshToken(
                token_digest=self._keyring.digest(value),
                grant_id=req.grant_id,
                client_id=req.client_id,
                subject=req.subject,
                scope=req.scope,
                resource=req.resource,
                created_at=now,
                expires_at=min(now + lifetime, family_expires_at),
                dpop_jkt=req.refresh_jkt,
            )
        )
        return value

    def verify(self, token: str) -> dict[str, Any] | None:
        """Signature, ``typ`` and ``iss`` check of one of our own access tokens; None if not ours.

        Expiry and revocation are the caller's to check: they change, the signature does not.
        """
        view = self._keys.view
        claims = view.verified.get(token)
        if claims is not None:
            return claims
        result = view.verifier.verify(token)
        if result is None:
            return None
        header, claims = result
        if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
            return None
        if claims.get("iss") != self.issuer:
            return None
        if len(view.verified) >= VERIFIED_CACHE_SIZE:
            view.verified.clear()
        view.verified[token] = claims
        return claims
