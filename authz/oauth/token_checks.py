"""Is this one of our access tokens, alive, for this audience? The checks introspection applies
(RFC 7662 §2.2) shared with the admin API: signature, ``iss`` and ``typ`` (``TokenIssuer.verify``),
exact ``aud``, ``exp``, every revocation fact (token, grant, client, agent), and the status of the
client the token was issued to (a disabled client or a suspended agent has no live tokens).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from authz.identity.clients import OAuthClient


class _Issuer(Protocol):
    def verify(self, token: str) -> dict[str, Any] | None: ...


class _Revocations(Protocol):
    def token_revoked(self, claims: dict[str, object]) -> bool: ...


class _Clients(Protocol):
    def client(self, client_id: str) -> OAuthClient | None: ...


def active_claims(
    issuer: _Issuer, revocations: _Revocations, clients: _Clients, token: str, audience: str | None
) -> dict[str, Any] | None:
    """The token's claims when it is active (for ``audience``, unless None); None otherwise (never says why)."""
    claims = issuer.verify(token)
    if claims is None or (audience is not None and claims.get("aud") != audience):
        return None
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        return None
    if revocations.token_revoked(claims):
        return None
    owner = clients.client(str(claims.get("client_id")))
    if owner is None or not owner.active:
        return None
    return claims
