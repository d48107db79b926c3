"""End to end: an agent exhausts its hard call budget at the demo MCP server -> 429 with
``Retry-After``; then the AS refuses it a new token (``access_denied``, "budget ... exhausted until").

Real processes: ``authz serve`` and ``resource_server.demo --budget-hook`` (which reserves and settles at
the AS's admin API as a ``budgets:use`` client). The agent, its secret, the budget and the MCP
server's admin client all come from the ``authz`` CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.e2e._processes import (
    MCP_HEADERS,
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
LIMIT = 3


def _token(issuer: str, client_id: str, secret: str, resource: str) -> httpx2.Response:
    data = {"grant_type": "client_credentials", "resource": resource, "scope": "tools:read"}
    return httpx2.post(f"{issuer}/token", data=data, auth=(client_id, secret), timeout=10)


def test_agent_exhausts_call_budget_then_is_refused_a_token(
    authz_server_factory: Any,
    processes: Processes,  # noqa: F811
    free_port: Callable[[], int],
) -> None:
    server = authz_server_factory(env={"AUTHZ_CACHE_STALENESS": "0.1"}, start=False)
    server.cli("migrate")
    mcp_port = free_port()
    mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
    add_resource(server, mcp_url, "tools:read tools:write", "demo")
    agent_id = parse_fields(server.cli("agents", "create", "thrifty agent").stdout)["id"]
    agent_secret = parse_fields(server.cli("agents", "credentials", "issue", agent_id).stdout)["client_secret"]
    rs = parse_fields(server.cli("admin-client", "create", "--name", "demo-mcp", "--scopes", "budgets:use").stdout)
    created = server.cli("budgets", "create", "--agent", agent_id, "--metric", "calls", "--limit", str(LIMIT),
                         "--period", "day").stdout  # fmt: skip
    budget_id = parse_fields(created)["budget_id"]
    server.start()

    args = ["-m", "resource_server.demo", "--port", str(mcp_port), "--issuer", server.issuer, "--mode", "jwt"]
    args += ["--budget-hook", "--budget-client-id", rs["client_id"]]
    demo = processes.start("demo-mcp-budget", args, base_env(RS_BUDGET_CLIENT_SECRET=rs["client_secret"]))
    wait_http(f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp", demo)

    t = _token(server.issuer, agent_id, agent_secret, mcp_url)
    assert t.status_code == 200, t.text
    headers = {**MCP_HEADERS, "authorization": f"Bearer {t.json()['access_token']}"}
    answered = 0
    with httpx2.Client(timeout=10) as http:
        for i in range(LIMIT + 2):
            r = http.post(mcp_url, json=tools_call("add", {"a": i, "b": 1}, i + 1), headers=headers)
            if r.status_code != 200:
                break
            assert sse_json(r)["result"]["structuredContent"]["result"] == i + 1
            answered += 1
    assert answered == LIMIT, (answered, r.text)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 0 < int(r.headers["retry-after"]) <= 25 * 3600
    problem = r.json()
    assert problem["budget_id"] == budget_id and problem["status"] == 429, problem

    def spent() -> bool:  # settles run in the background, after the responses
        status = server.cli("budgets", "status", budget_id).stdout
        return any(line.split()[:2] == ["spent", str(LIMIT)] for line in status.splitlines())

    wait_until(spent, "the settles to land", 10, demo)
    refused = _token(server.issuer, agent_id, agent_secret, mcp_url)
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error"] == "access_denied"
    assert body["error_description"].startswith(f"budget {budget_id} exhausted until "), body
    assert int(refused.headers["retry-after"]) > 0
