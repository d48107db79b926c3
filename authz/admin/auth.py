"""Bearer authentication of admin API calls (RFC 6750).

The token must be active for the admin resource by the same rules as introspection
(:func:`authz.oauth.token_checks.active_claims`), carry the scope the operation needs, and have been
issued to a client whose ``allowed_resources`` names the admin resource explicitly — a client
allowed "any registered resource" (agents, dynamically registered clients) is never an admin.

RFC 6750 §3: without credentials the response is 401 with ``WWW-Authenticate: Bearer`` and no
error code; §3.1 ``invalid_token`` (401) for a token that is expired, revoked, malformed or for
another audience; ``insufficient_scope`` (403) "SHOULD" name the ``scope`` needed.

DPoP (RFC 9449 §7.1): a DPoP-bound token (``cnf.jkt``) is presented as ``Authorization: DPoP
<token>`` with a proof for this request (``htm``, ``htu``, ``ath``; its ``jti`` once, in the shared
replay cache) by the key the token is bound to. §7.2: "such a protected resource MUST reject a
DPoP-bound access token received as a bearer token" — refused with a ``DPoP`` challenge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from authz.admin.problems import ApiProblem
from authz.context import Context
from authz.oauth.dpop import TokenEndpointDpop
from authz.oauth.token_checks import active_claims
from dpop import ProofError

REALM = "authz-admin"


@dataclass(frozen=True)
class Principal:
    client_id: str
    subject: str
    scopes: frozenset[str]


def authenticate(
    ctx: Context,
    headers: Headers,
    audience: str,
    scope: str,
    *,
    dpop: TokenEndpointDpop | None = None,
    method: str = "GET",
    url: str = "",
) -> Principal:
    """The caller, or an :class:`ApiProblem`; ``dpop``, ``method`` and ``url`` check DPoP presentations."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or (scheme == "dpop" and dpop is None) or not token:
        raise ApiProblem(401, "A bearer access token for the admin API is required.", headers=_challenge(None, None))
    claims = active_claims(ctx.issuer, ctx.revocations, ctx.directory, token, audience)
    client = ctx.directory.client(str(claims.get("client_id"))) if claims else None
    if claims is None or client is None or audience not in (client.allowed_resources or ()):
        raise ApiProblem(
            401,
            "The access token is invalid, expired, revoked, or not for the admin API.",
            headers=_challenge("invalid_token", None, dpop=dpop if scheme == "dpop" else None),
        )
    jkt = _bound_jkt(claims)
    if scheme == "bearer" and jkt is not None:  # RFC 9449 §7.2
        challenge = _challenge("invalid_token", None, dpop=dpop)
        raise ApiProblem(401, "The access token is DPoP-bound: use the DPoP scheme with a proof.", headers=challenge)
    if scheme == "dpop":
        assert dpop is not None
        if jkt is None:
            challenge = _challenge("invalid_token", None, dpop=dpop)
            raise ApiProblem(401, "The access token is not DPoP-bound.", headers=challenge)
        try:
            proof = dpop.check_presentation(headers.getlist("dpop"), method=method, uri=url, token=token)
        except ProofError as exc:
            raise ApiProblem(401, exc.description, headers=_challenge("invalid_dpop_proof", None, dpop=dpop)) from None
        if proof.jkt != jkt:
            challenge = _challenge("invalid_token", None, dpop=dpop)
            raise ApiProblem(401, "The access token is bound to another key.", headers=challenge)
    scopes = frozenset(str(claims.get("scope", "")).split())
    if scope not in scopes:
        raise ApiProblem(
            403, f"This operation needs the {scope} scope.", headers=_challenge("insufficient_scope", scope)
        )
    return Principal(client_id=client.client_id, subject=str(claims.get("sub", "")), scopes=scopes)


def _bound_jkt(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


def _challenge(error: str | None, scope: str | None, *, dpop: TokenEndpointDpop | None = None) -> dict[str, str]:
    params = [f'realm="{REALM}"']
    if error:
        params.append(f'error="{error}"')
    if scope:
        params.append(f'scope="{scope}"')
    if dpop is not None:  # RFC 9449 §7.1: the DPoP scheme's challenge names the accepted algorithms
        params.append(f'algs="{" ".join(dpop.verifier.algorithms)}"')
        return {"WWW-Authenticate": "DPoP " + ", ".join(params)}
    return {"WWW-Authenticate": "Bearer " + ", ".join(params)}
