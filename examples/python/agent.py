"""An example agent on the Python SDK: a token for an MCP server, a tool call, usage and an outcome recorded.

Run it against ``authz demo`` (it prints the agent's id and secret), with an admin API client for
metering::

    authz demo                                     # note the agent id/secret and AUTHZ_DATA_DIR it prints
    AUTHZ_DATA_DIR=.authz/demo authz admin-client create --name example \\
        --scopes "metering:read metering:write"    # note its client_id/client_secret
    python examples/python/agent.py --issuer http://127.0.0.1:9100 --mcp http://127.0.0.1:9200/mcp \\
        --agent-id agt_... --agent-secret=... --admin-id ... --admin-secret=...

Each flag can come from the environment instead (``AUTHZ_ISSUER``, ``AUTHZ_MCP_URL``,
``AUTHZ_AGENT_ID``, ``AUTHZ_AGENT_SECRET``, ``AUTHZ_ADMIN_ID``, ``AUTHZ_ADMIN_SECRET``). Write
secrets as ``--agent-secret=VALUE``: a secret may begin with ``-``, which argparse takes for a flag.

What it does: (1) gets an access token for the MCP server with the agent's own credential
(client_credentials, RFC 8707 ``resource``; cached and refreshed by ``TokenSource``), (2) calls the
demo server's ``add`` and ``whoami`` tools with the official MCP SDK client, (3) records the tokens
its (pretend) model call used and an outcome through the admin SDK, and (4) prints its usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import httpx2
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from agent_client.auth import BearerAuth
from agent_client.credentials import ClientSecret
from agent_client.sdk import AsyncClient
from agent_client.token_source import TokenSource

MODEL = {"provider": "anthropic", "model": "claude-3-5-sonnet"}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="An example agent on the authz Python SDK.")
    for flag, env in [("issuer", "AUTHZ_ISSUER"), ("mcp", "AUTHZ_MCP_URL"), ("agent-id", "AUTHZ_AGENT_ID"),
                      ("agent-secret", "AUTHZ_AGENT_SECRET"), ("admin-id", "AUTHZ_ADMIN_ID"),
                      ("admin-secret", "AUTHZ_ADMIN_SECRET")]:  # fmt: skip
        ap.add_argument(f"--{flag}", default=os.environ.get(env), required=env not in os.environ)
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the usage to show the events")
    return ap.parse_args()


async def call_tools(mcp_url: str, tokens: TokenSource) -> tuple[Any, dict[str, Any]]:
    """``add(2, 3)`` and ``whoami`` on the MCP server, the token sent by ``BearerAuth``."""
    async with (
        httpx2.AsyncClient(auth=BearerAuth(tokens), timeout=30) as http,
        McpClient(streamable_http_client(mcp_url, http_client=http)) as mcp,
    ):
        added = await mcp.call_tool("add", {"a": 2, "b": 3})
        who = await mcp.call_tool("whoami", {})
    if added.is_error or who.is_error:
        raise SystemExit(f"a tool call failed: {added} {who}")
    total = (added.structured_content or {}).get("result", added.content[0].text)  # type: ignore[union-attr]
    identity = who.structured_content or json.loads(who.content[0].text)  # type: ignore[union-attr]
    return total, identity.get("result", identity)


async def main() -> None:
    args = _args()
    agent = ClientSecret(args.agent_id, args.agent_secret)
    async with await TokenSource.for_issuer(args.issuer, args.mcp, agent, scope="tools:read") as tokens:
        total, identity = await call_tools(args.mcp, tokens)
    print(f"add(2, 3) = {total}; whoami: agent={identity['agent']} scopes={identity['scopes']}")

    admin = ClientSecret(args.admin_id, args.admin_secret)
    api = f"{args.issuer.rstrip('/')}/api/v1"
    async with await TokenSource.for_issuer(args.issuer, api, admin, scope="metering:read metering:write") as src:
        async with AsyncClient(args.issuer, api_key=await src.token()) as authz:
            usage = {"input_tokens": 1200, "output_tokens": 350}
            tokens_event = await authz.metering.record("tokens.consumed", agent=args.agent_id, usage=usage, **MODEL)
            outcome = await authz.outcomes.record("answer_delivered", agent=args.agent_id)
            print(f"recorded tokens.consumed ({tokens_event['accepted']}) and outcome.answer_delivered "
                  f"({outcome['accepted']})")  # fmt: skip
            rows = await _usage(authz, args.agent_id, args.wait)
    print("usage today:")
    for row in rows:
        tokens, cost = row.get("tokens", 0), row.get("cost_usd")
        print(f"  {row['type']:<28} events={row['count']:<4} tokens={tokens:<6} cost_usd={cost}")
    print(json.dumps({"agent": args.agent_id, "usage": rows}))


async def _usage(authz: AsyncClient, agent: str, wait: float) -> list[dict[str, Any]]:
    """This agent's usage by event type, once the server's metering flush shows both events."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        out = await authz.metering.usage(granularity="day", group_by=["type"], filters={"agent": agent})
        rows: list[dict[str, Any]] = out["rows"]
        types = {r["type"] for r in rows}
        if {"tokens.consumed", "outcome.answer_delivered"} <= types or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main())
