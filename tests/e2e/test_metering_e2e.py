"""Metering end to end, real processes: ``authz serve`` + the demo MCP server with ``--metering``.

An agent calls a tool N times; the reporter ships ``call.completed`` events in the background; after
the AS's flush interval ``GET /api/v1/metering/usage`` shows exactly N for that agent (and still N a
moment later: nothing counted twice). Then calls made just before the MCP server is stopped are
shipped on shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.e2e._processes import (
    MCP_HEADERS,
    Proc,
    Processes,
    add_resource,
    base_env,
    parse_fields,
    processes,  # noqa: F401  (fixture)
    sse_json,
    tools_call,
    wait_http,
    wait_until,
)

pytestmark = pytest.mark.e2e
N = 7


def _token(issuer: str, client_id: str, secret: str, resource: str, scope: str) -> str:
    r = httpx2.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
        auth=(client_id, secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _start_demo(processes: Processes, issuer: str, port: int, meter_id: str, meter_secret: str, interval: str) -> Proc:  # noqa: F811
    args = ["-m", "resource_server.demo", "--port", str(port), "--issuer", issuer, "--mode", "jwt"]
    args += ["--metering", "--metering-client-id", meter_id, "--metering-interval", interval]
    proc = processes.start(f"demo-mcp-{interval}", args, base_env(RS_METERING_CLIENT_SECRET=meter_secret))
    wait_http(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", proc)
    return proc


def _call_add(mcp_url: str, token: str, times: int, first_id: int) -> None:
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    for i in range(times):
        r = httpx2.post(mcp_url, json=tools_call("add", {"a": i, "b": 1}, first_id + i), headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        assert sse_json(r)["result"]["structuredContent"]["result"] == i + 1


def _calls(issuer: str, read_token: str, agent: str) -> list[dict[str, Any]]:
    r = httpx2.get(
        f"{issuer}/api/v1/metering/usage",
        params={"group_by": "agent,tool,type,mcp_server", "filter": f"agent={agent}", "granularity": "day"},
        headers={"authorization": f"Bearer {read_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["rows"]
    return rows


def _count(rows: list[dict[str, Any]]) -> int:
    return sum(r["count"] for r in rows if r["type"] == "call.completed")


def test_tool_calls_are_metered_exactly_once(
    authz_server_factory: Any,
    processes: Processes,  # noqa: F811
    free_port: Callable[[], int],
) -> None:
    server = authz_server_factory(
        env={"AUTHZ_CACHE_STALENESS": "0.1", "AUTHZ_METERING_FLUSH_INTERVAL_S": "0.2"}, start=False
    )
    server.cli("migrate")
    mcp_port = free_port()
    mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
    add_resource(server, mcp_url, "tools:read tools:write tools:admin", "demo")
    agent_id = parse_fields(server.cli("agents", "create", "metered agent").stdout)["id"]
    agent_secret = parse_fields(server.cli("agents", "credentials", "issue", agent_id).stdout)["client_secret"]
    meter = parse_fields(
        server.cli("admin-client", "create", "--name", "mcp-meter", "--scopes", "metering:write").stdout
    )
    reader = parse_fields(server.cli("admin-client", "create", "--name", "reader", "--scopes", "metering:read").stdout)
    server.start()
    admin_api = f"{server.issuer}/api/v1"
    read_token = _token(server.issuer, reader["client_id"], reader["client_secret"], admin_api, "metering:read")

    # 1. Background shipping: N calls show up as exactly N call.completed events.
    demo = _start_demo(processes, server.issuer, mcp_port, meter["client_id"], meter["client_secret"], "0.2")
    agent_token = _token(server.issuer, agent_id, agent_secret, mcp_url, "tools:read")
    _call_add(mcp_url, agent_token, N, 1)
    wait_until(lambda: _count(_calls(server.issuer, read_token, agent_id)) >= N, "N metered calls", 20, demo)
    time.sleep(1.0)  # several more reporter and flusher ticks: nothing is counted twice
    rows = _calls(server.issuer, read_token, agent_id)
    assert _count(rows) == N, rows
    (row,) = [r for r in rows if r["type"] == "call.completed"]
    assert (row["agent"], row["tool"], row["mcp_server"]) == (agent_id, "add", mcp_url)

    # 2. Flush on shutdown: calls queued by a reporter that would not ship for an hour are sent on SIGTERM.
    demo.stop()
    demo = _start_demo(processes, server.issuer, mcp_port, meter["client_id"], meter["client_secret"], "3600")
    _call_add(mcp_url, agent_token, 3, 100)
    time.sleep(0.5)
    assert _count(_calls(server.issuer, read_token, agent_id)) == N  # still queued in the MCP server
    demo.stop()
    wait_until(lambda: _count(_calls(server.issuer, read_token, agent_id)) >= N + 3, "the shutdown flush", 10)
    assert _count(_calls(server.issuer, read_token, agent_id)) == N + 3
