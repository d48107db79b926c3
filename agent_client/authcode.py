"""A headless authorization-code + PKCE flow for clients that are given the redirect (tests, CI, conformance).

RFC 7591 dynamic registration as a public native client, RFC 6749 §4.1 with PKCE S256 (RFC 7636)
and ``resource`` (RFC 8707) on both legs, and, with a :class:`~agent_client.dpop.DpopSession`,
``dpop_jkt`` on the authorization request (RFC 9449 §10) and DPoP proofs on the token request.
The authorization endpoint must answer with a redirect at once (an AS that signs in and consents
automatically, like ``authz demo`` or a conformance mock): this module never drives a browser.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from agent_client.credentials import PublicClient
from agent_client.discovery import AuthServer, ProtectedResource
from agent_client.dpop import DpopSession
from agent_client.grants import AuthorizationCode
from agent_client.token_source import TokenError, TokenSource

__all__ = ["authorize_headless", "register_public_client"]

REDIRECT_URI = "http://127.0.0.1:8976/callback"


async def register_public_client(http: httpx2.AsyncClient, server: AuthServer, redirect_uri: str) -> str:
    endpoint = server.metadata.get("registration_endpoint")
    if not isinstance(endpoint, str):
        raise TokenError("no_registration", "the authorization server offers no registration endpoint")
    meta: dict[str, Any] = {
        "client_name": "authz agent_client",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    }
    r = await http.post(endpoint, json=meta)
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code not in (200, 201) or not isinstance(body.get("client_id"), str):
        raise TokenError("registration_failed", f"HTTP {r.status_code}", r.status_code)
    return str(body["client_id"])


async def authorize_headless(
    http: httpx2.AsyncClient,
    server: AuthServer,
    prm: ProtectedResource,
    *,
    dpop: DpopSession | None = None,
    scope: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    client_id: str | None = None,
) -> TokenSource:
    """Register (unless ``client_id`` is given), authorize, and return a source holding the token."""
    client_id = client_id or await register_public_client(http, server, redirect_uri)
    endpoint = server.metadata.get("authorization_endpoint")
    if not isinstance(endpoint, str):
        raise TokenError("no_authorization_endpoint", "the authorization server has no authorization endpoint")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "resource": prm.resource,
    }
    scope = scope if scope is not None else " ".join(prm.scopes_supported) or None
    if scope:
        params["scope"] = scope
    if dpop is not None:
        params["dpop_jkt"] = dpop.jkt
    sep = "&" if "?" in endpoint else "?"
    r = await http.get(endpoint + sep + urlencode(params), follow_redirects=False)
    location = r.headers.get("location", "")
    if r.status_code not in (302, 303) or not location.startswith(redirect_uri):
        raise TokenError("authorization_failed", f"HTTP {r.status_code} without a redirect to the client")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if answer.get("state") != state or "code" not in answer:
        raise TokenError(answer.get("error", "authorization_failed"), answer.get("error_description", ""))
    grant = AuthorizationCode(answer["code"], verifier, redirect_uri)
    source = TokenSource(server, prm.resource, PublicClient(client_id), grant=grant, http=http, dpop=dpop)
    source.scope = None  # the code carries the scope
    await source.current()  # redeem the code now: it is single use
    return source
