"""End to end: an agent exchanges a user's token for the demo MCP server and calls a tool as the user.

Real processes: ``authz serve --dev`` (the user signs in and consents automatically), the demo MCP
server (``resource_server.demo``, hybrid verification: local JWT check plus introspection for
revocation), and in this process ``agent_client`` with the MCP SDK client. The user's token comes
from the authorization code flow over httpx2; the agent (``authz agents create``, a registered
public key: ``private_key_jwt``) exchanges it with ``TokenSource(grant=TokenExchange(...))``.
``whoami`` must name the user as subject and the agent in ``act``. Then the agent is suspended
(``authz agents suspend``): its token stops working at the MCP server (401) and no new one is issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from joserfc.jwk import ECKey
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_client import BearerAuth, PrivateKeyJwt, TokenError, TokenExchange, TokenSource
from tests.e2e._processes import (
    INITIALIZE,
    MCP_HEADERS,
    Processes,
    add_client,
    add_resource,
    parse_fields,
    processes,  # noqa: F401  (fixture)
    start_demo_mcp,
)

pytestmark = pytest.mark.e2e
REDIRECT = "http://127.0.0.1:3999/callback"


def user_token(issuer: str, client_id: str, resource: str, scope: str) -> str:
    """Authorization code + PKCE against a development-mode AS (it signs in and consents by itself)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with httpx2.Client(base_url=issuer, timeout=10) as http:
        r = http.get(
            "/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "state": "s1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": resource,
                "scope": scope,
            },
        )
        assert r.status_code == 302, r.text
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        t = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": client_id,
                "resource": resource,
            },
        )
        assert t.status_code == 200, t.text
        token: str = t.json()["access_token"]
        return token


def sub_of(token: str) -> str:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


async def call_whoami(mcp_url: str, source: TokenSource) -> dict[str, Any]:
    async with httpx2.AsyncClient(auth=BearerAuth(source), timeout=30) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
            result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    data: dict[str, Any] = result.structured_content or json.loads(result.content[0].text)  # type: ignore[union-attr]
    return data.get("result", data)


@pytest.mark.timeout(180)
def test_agent_exchanges_a_users_token_then_is_suspended(
    authz_server_factory: Any,
    processes: Processes,  # noqa: F811
    free_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    server = authz_server_factory(env={"AUTHZ_CACHE_STALENESS": "0.1"}, start=False)
    server.cli("migrate")
    mcp_port = free_port()
    mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
    rs_id, rs_secret = add_resource(server, mcp_url, "tools:read tools:write tools:admin", "demo")
    add_client(server, "--client-id", "user-app", "--public", "--redirect-uri", REDIRECT)
    agent_id = parse_fields(server.cli("agents", "create", "e2e exchange agent").stdout)["id"]
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwk_file = tmp_path / "agent.jwk.json"
    jwk_file.write_text(json.dumps(key.as_dict(private=False)))
    server.cli("agents", "credentials", "issue", agent_id, "--kind", "public_key", "--jwk-file", str(jwk_file))
    server.start()
    start_demo_mcp(processes, server.issuer, mcp_port, mode="hybrid", client_id=rs_id, client_secret=rs_secret)

    user = user_token(server.issuer, "user-app", mcp_url, "tools:read tools:write")

    async def scenario() -> None:
        source = await TokenSource.for_server(
            mcp_url, PrivateKeyJwt(agent_id, key), grant=TokenExchange(user), scope="tools:read"
        )
        async with source:
            who = await call_whoami(mcp_url, source)
            assert who["subject"] == sub_of(user)
            assert who["act"]["sub"] == agent_id and who["client_id"] == agent_id
            assert who["agent"] == agent_id and who["scopes"] == ["tools:read"]
            token = await source.token()

            server.cli("agents", "suspend", agent_id)
            deadline = time.monotonic() + 20  # AS sees it within 0.1 s; the hybrid RS within 5 s
            async with httpx2.AsyncClient(timeout=10) as http:
                while True:
                    r = await http.post(
                        mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
                    )
                    if r.status_code == 401 or time.monotonic() > deadline:
                        break
                    await anyio.sleep(0.25)
            assert r.status_code == 401, r.text
            source.invalidate()
            with pytest.raises(TokenError) as refused:
                await source.token()
            assert refused.value.error in ("unauthorized_client", "invalid_client")

    anyio.run(scenario)
