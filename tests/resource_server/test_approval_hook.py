"""``ApprovalHook`` against the real AS (in process): -32042 with the approval URL, one call per
approval, the arguments digest binds it, a rejection is a clear refusal, the AS down fails closed."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest

from authz.admin.bootstrap import create_admin_client
from authz.compliance import approvals
from resource_server.approval import URL_ELICITATION_REQUIRED, ApprovalHook, arguments_digest
from resource_server.context import TokenInfo
from resource_server.hooks import Refusal, UseContext
from resource_server.scopes import parse_calls
from tests.authz.compliance._helpers import new_agent
from tests.authz.conftest import AS, RESOURCE, as_factory

__all__ = ["as_factory"]
pytestmark = [pytest.mark.anyio, pytest.mark.requirement("mcp:url-elicitation-required")]


@pytest.fixture
async def authz(as_factory: Any) -> AS:
    server: AS = await as_factory()
    return server


def hook(authz: AS, **kw: Any) -> ApprovalHook:
    reg = create_admin_client(
        authz.ctx.store, authz.ctx.keyring, authz.settings, name="mcp", scopes=["approvals:check"]
    )
    assert reg.client_secret
    return ApprovalHook(authz.settings.issuer, RESOURCE, reg.client_id, reg.client_secret, http_client=authz.http, **kw)


def use(agent: str, *messages: dict[str, Any]) -> UseContext:
    body = json.dumps(messages[0] if len(messages) == 1 else list(messages)).encode()
    info = TokenInfo.from_claims({"sub": "u", "client_id": agent, "exp": time.time() + 60})
    return UseContext(token=info, calls=parse_calls(body), http_method="POST", path="/mcp",
                      required_scopes=frozenset())  # fmt: skip


def call(tool: str, arguments: dict[str, Any], request_id: int = 7) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


def rpc_error(refusal: Refusal | None) -> dict[str, Any]:
    assert refusal is not None and refusal.status == 200
    assert dict(refusal.headers)["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(refusal.body)
    assert body["jsonrpc"] == "2.0"
    error: dict[str, Any] = body["error"]
    return error


async def test_url_elicitation_then_exactly_one_call(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    h = hook(authz)
    assert await h.before(use(agent, call("read_file", {"path": "/a"}))) is None  # not gated: no check made
    assert await h.before(use(agent, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})) is None
    args = {"path": "/etc/x", "force": True}
    error = rpc_error(await h.before(use(agent, call("delete_file", args))))
    assert error["code"] == URL_ELICITATION_REQUIRED == -32042
    (elicitation,) = error["data"]["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["url"].endswith(
        "/console/approvals/" + elicitation["elicitationId"]
    )
    stored, shown = approvals.get_approval(authz.ctx, elicitation["elicitationId"])
    assert stored["arguments_sha256"] == arguments_digest(args)[0] and json.loads(shown or "") == args
    approvals.decide(authz.ctx, elicitation["elicitationId"], True, actor="console:alice")
    reordered = {"force": True, "path": "/etc/x"}  # the same arguments: the digest is over sorted keys
    other = rpc_error(await h.before(use(agent, call("delete_file", {"path": "/etc/y", "force": True}))))
    assert other["code"] == -32042 and other["data"]["elicitations"][0]["elicitationId"] != elicitation["elicitationId"]
    assert await h.before(use(agent, call("delete_file", reordered))) is None  # the one approved call
    again = rpc_error(await h.before(use(agent, call("delete_file", args))))
    assert again["code"] == -32042 and again["data"]["elicitations"][0]["elicitationId"] != elicitation["elicitationId"]


async def test_rejection_and_batches_and_outage(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    h = hook(authz)
    first = rpc_error(await h.before(use(agent, call("delete_file", {}))))
    approvals.decide(authz.ctx, first["data"]["elicitations"][0]["elicitationId"], False, actor="console:alice",
                     reason="too risky")  # fmt: skip
    rejected = rpc_error(await h.before(use(agent, call("delete_file", {}))))
    assert rejected["code"] == -32001 and "rejected by console:alice: too risky" in rejected["message"]
    batch = rpc_error(await h.before(use(agent, call("read_file", {}), call("delete_file", {}, 8))))
    assert batch["code"] == -32600
    async with httpx2.AsyncClient(timeout=1) as http:
        down = ApprovalHook("http://127.0.0.1:9", RESOURCE, "c", "s", http_client=http)
        refusal = await down.before(use(agent, call("delete_file", {})))
        assert refusal is not None and refusal.status == 503 and dict(refusal.headers)["retry-after"] == "5"
        assert await down.before(use(agent, {"jsonrpc": "2.0", "id": 1, "method": "initialize"})) is None
        assert await ApprovalHook("http://127.0.0.1:9", RESOURCE, "c", "s", http_client=http,
                                  fail_closed=False).before(use(agent, call("delete_file", {}))) is None  # fmt: skip


async def test_throttled_is_a_refusal_without_a_new_request(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    h = hook(authz)
    for i in range(approvals.MAX_PENDING):
        assert rpc_error(await h.before(use(agent, call("delete_file", {"n": i}))))["code"] == -32042
    error = rpc_error(await h.before(use(agent, call("delete_file", {"n": "one more"}))))
    assert error["code"] == -32001 and error["data"] == {"throttled": True} and "waiting" in error["message"]


def test_the_approval_binds_the_arguments_the_middleware_parsed_even_deeply_nested_ones() -> None:
    """Arguments nested past the AS's general JSON limit (32) but within JSON-RPC's (64) are bound."""
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "refund", "arguments": {"x": deep}}}).encode()  # fmt: skip
    (call,) = parse_calls(body)
    assert call.arguments == {"x": deep}
    assert arguments_digest(call.arguments) != arguments_digest(None)
    assert arguments_digest(call.arguments) != arguments_digest({"x": [deep]})
