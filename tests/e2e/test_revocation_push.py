"""End to end: suspending an agent reaches a JWT-mode and a hybrid-mode MCP server within a second.

Real processes: ``authz serve`` and two demo MCP servers (``resource_server.demo``), one verifying JWTs
locally (no per-request AS traffic at all) and one hybrid (local JWT + cached introspection); both consume
the AS's Shared Signals stream (RFC 8936 poll). The agent's token is used at both first, so each server has
it cached (JWT memo, introspection cache). Then an administrator suspends the agent through ``/api/v1``;
both servers must answer 401 before the issue's 1 s bound, which is the deadline of the retry loop — and a
second token issued before the suspension but never shown to either server must be refused too (the
revocation cutoff, not only the caches).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.e2e._processes import (
    MCP_HEADERS,
    Processes,
    add_resource,
    parse_fields,
    processes,  # noqa: F401  (fixture)
    sse_json,
    start_demo_mcp,
    tools_call,
    wait_until,
)

pytestmark = pytest.mark.e2e
BOUND = 1.0  # seconds: the "within 1 s"


def agent_token(issuer: str, agent_id: str, secret: str, resource: str) -> str:
    data = {"grant_type": "client_credentials", "resource": resource, "scope": "tools:read"}
    r = httpx2.post(f"{issuer}/token", data=data, auth=(agent_id, secret), timeout=10)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def admin_headers(server: Any, ops: dict[str, str]) -> dict[str, str]:
    data = {"grant_type": "client_credentials", "resource": f"{server.issuer}/api/v1", "scope": "admin:write"}
    r = httpx2.post(f"{server.issuer}/token", data=data, auth=(ops["client_id"], ops["client_secret"]), timeout=10)
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def streams_of(issuer: str, rs_id: str, rs_secret: str) -> list[dict[str, Any]]:
    r = httpx2.get(f"{issuer}/ssf/stream", auth=(rs_id, rs_secret), timeout=10)
    assert r.status_code == 200, r.text
    streams: list[dict[str, Any]] = r.json()
    return streams


def call(http: httpx2.Client, url: str, token: str) -> httpx2.Response:
    return http.post(
        url, json=tools_call("add", {"a": 2, "b": 3}), headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
    )


@pytest.mark.timeout(180)
def test_suspension_is_refused_at_jwt_and_hybrid_servers_within_a_second(
    authz_server_factory: Any,
    processes: Processes,  # noqa: F811
    free_port: Callable[[], int],
) -> None:
    server = authz_server_factory(start=False)
    server.cli("migrate")
    urls: dict[str, str] = {}
    creds: dict[str, tuple[str, str]] = {}
    ports = {mode: free_port() for mode in ("jwt", "hybrid")}
    for mode, port in ports.items():
        urls[mode] = f"http://127.0.0.1:{port}/mcp"
        creds[mode] = add_resource(server, urls[mode], "tools:read tools:write", f"demo {mode}")
    agent_id = parse_fields(server.cli("agents", "create", "pushed agent").stdout)["id"]
    secret = parse_fields(server.cli("agents", "credentials", "issue", agent_id).stdout)["client_secret"]
    ops = parse_fields(server.cli("admin-client", "create", "--name", "ops", "--scopes", "admin:write").stdout)
    server.start()
    admin = admin_headers(server, ops)
    for mode, port in ports.items():
        rs_id, rs_secret = creds[mode]
        start_demo_mcp(processes, server.issuer, port, mode=mode, client_id=rs_id, client_secret=rs_secret)
    for mode in ports:  # each server opened its stream at start-up
        wait_until(lambda m=mode: len(streams_of(server.issuer, *creds[m])) == 1, f"{mode} SSF stream", 30)

    seen = {mode: agent_token(server.issuer, agent_id, secret, urls[mode]) for mode in ports}
    unseen = {mode: agent_token(server.issuer, agent_id, secret, urls[mode]) for mode in ports}
    with httpx2.Client(timeout=10) as http:
        for mode in ports:
            for _ in range(3):  # validated, then served from the JWT memo / introspection cache
                r = call(http, urls[mode], seen[mode])
                assert r.status_code == 200, r.text
                assert sse_json(r)["result"]["structuredContent"]["result"] == 5

        r = http.post(f"{server.issuer}/api/v1/agents/{agent_id}/suspend", json={"reason": "e2e"}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "suspended"
        deadline = time.monotonic() + BOUND
        refused: dict[str, int] = {}
        while len(refused) < len(ports) and time.monotonic() < deadline:
            for mode in ports:
                if mode not in refused and call(http, urls[mode], seen[mode]).status_code == 401:
                    refused[mode] = 401
            time.sleep(0.02)
        assert refused == {"jwt": 401, "hybrid": 401}, f"still accepted after {BOUND} s: {set(ports) - set(refused)}"

        for mode in ports:
            r = call(http, urls[mode], unseen[mode])  # never seen: refused by the cutoff, not by a cache
            assert r.status_code == 401, (mode, r.text)
            assert 'error="invalid_token"' in r.headers["www-authenticate"]
