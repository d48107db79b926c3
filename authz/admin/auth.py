"""Bearer authentication of admin API calls (RFC 6750).

The token must be active for the admin resource by the same rules as introspection
(:func:`authz.oauth.token_checks.active_claims`), carry the scope the operation needs, and have been
issued to a client whose ``allowed_resources`` names the admin resource explicitly — a client
allowed "any registered resource" (agents, dynamically registered clients) is never an admin.

RFC 6750 §3: without credentials the response is 401 with ``WWW-Authenticate: Bearer`` and no
error code; §3.1 ``invalid_token`` (401) for a token that is expired, revoked, malformed or for
another audience; ``insufficient_scope`` (403) "SHOULD" name the ``scope`` needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers

from authz.admin.problems import ApiProblem
from authz.context import Context
from authz.oauth.token_checks import active_claims

REALM = "authz-admin"


@dataclass(frozen=True)
class Principal:
    client_id: str
    subject: str
    scopes: frozenset[str]


def authenticate(ctx: Context, headers: Headers, audience: str, scope: str) -> Principal:
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "A bearer access token for the admin API is required.", headers=_challenge(None, None))
    claims = active_claims(ctx.issuer, ctx.revocations, ctx.directory, token.strip(), audience)
    client = ctx.directory.client(str(claims.get("client_id"))) if claims else None
    if claims is None or client is None or audience not in (client.allowed_resources or ()):
        raise ApiProblem(
            401,
            "The access token is invalid, expired, revoked, or not for the admin API.",
            headers=_challenge("invalid_token", None),
        )
    scopes = frozenset(str(claims.get("scope", "")).split())
    if scope not in scopes:
        raise ApiProblem(
            403, f"This operation needs the {scope} scope.", headers=_challenge("insufficient_scope", scope)
        )
    return Principal(client_id=client.client_id, subject=str(claims.get("sub", "")), scopes=scopes)


def _challenge(error: str | None, scope: str | None) -> dict[str, str]:
    params = [f'realm="{REALM}"']
    if error:
        params.append(f'error="{error}"')
    if scope:
        params.append(f'scope="{scope}"')
    return {"WWW-Authenticate": "Bearer " + ", ".join(params)}
