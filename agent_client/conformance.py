"""``python -m agent_client.conformance <server-url>``: the client the MCP conformance suite drives.

The suite (``conformance client --command ...``) appends the scenario's MCP server URL and sets
``MCP_CONFORMANCE_CONTEXT`` (JSON: ``client_id`` plus ``client_secret``, or ``private_key_pem``
and ``signing_algorithm``) for the client-credentials scenarios. We discover the server's
authorization server (RFC 9728 then RFC 8414), get a token with ``agent_client``, connect with the
MCP SDK client over Streamable HTTP, initialize and list tools, and exit 0; anything else exits 1.

The DPoP scenarios (``MCP_CONFORMANCE_SCENARIO`` ``auth/dpop``, ``auth/dpop-nonce``) give no
credentials: the client registers, runs the authorization-code flow headlessly with a DPoP proof
key (``agent_client.authcode``) and presents the bound token with ``DpopAuth`` (RFC 9449).
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import httpx2

from agent_client.auth import BearerAuth
from agent_client.authcode import authorize_headless
from agent_client.credentials import ClientCredential, ClientSecret, PrivateKeyJwt
from agent_client.discovery import discover, discover_resource
from agent_client.dpop import DpopSession
from agent_client.dpop_auth import DpopAuth
from agent_client.token_source import TokenSource


def credential_from_context(context: dict[str, object]) -> ClientCredential:
    client_id = context.get("client_id")
    if not isinstance(client_id, str):
        raise ValueError("MCP_CONFORMANCE_CONTEXT has no client_id")
    pem = context.get("private_key_pem")
    if isinstance(pem, str):
        alg = context.get("signing_algorithm")
        return PrivateKeyJwt(client_id, pem, algorithm=alg if isinstance(alg, str) else "ES256")
    secret = context.get("client_secret")
    if isinstance(secret, str):
        return ClientSecret(client_id, secret)
    raise ValueError("MCP_CONFORMANCE_CONTEXT has neither private_key_pem nor client_secret")


async def run_dpop(server_url: str) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    session = DpopSession()
    async with httpx2.AsyncClient(timeout=30) as plain:
        prm = await discover_resource(plain, server_url)
        server = await discover(plain, prm.authorization_servers[0])
        source = await authorize_headless(plain, server, prm, dpop=session)
        async with httpx2.AsyncClient(auth=DpopAuth(source), timeout=30) as http:
            async with Client(streamable_http_client(server_url, http_client=http)) as client:
                tools = await client.list_tools()
                print(f"agent_client.conformance: {len(tools.tools)} tools at {server_url} (DPoP)", flush=True)


async def run(server_url: str, context: dict[str, object]) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    if os.environ.get("MCP_CONFORMANCE_SCENARIO", "").startswith("auth/dpop"):
        await run_dpop(server_url)
        return
    async with await TokenSource.for_server(server_url, credential_from_context(context)) as source:
        async with httpx2.AsyncClient(auth=BearerAuth(source), timeout=30) as http:
            async with Client(streamable_http_client(server_url, http_client=http)) as client:
                tools = await client.list_tools()
                print(f"agent_client.conformance: {len(tools.tools)} tools at {server_url}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m agent_client.conformance <server-url>", file=sys.stderr)
        return 2
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    try:
        anyio.run(run, args[-1], context)
    except Exception as exc:
        print(f"agent_client.conformance: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
