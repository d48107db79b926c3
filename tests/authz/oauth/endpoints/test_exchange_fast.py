"""The token exchange fast path answers exactly as the generic (Authlib) path, and only plain, valid requests."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from tests.authz.conftest import AS, ISSUER, RESOURCE, ASFactory
from tests.authz.oauth.grants.test_token_exchange import AT, TE, agent, mint

pytestmark = pytest.mark.anyio


@pytest.fixture
async def authz(db_url: str, as_factory: ASFactory) -> AS:
    """The authorization server on SQLite, then on PostgreSQL."""
    return await as_factory(database_url=db_url, dev_mode=True)


def _part(token: str, i: int) -> dict[str, Any]:
    part = token.split(".")[i]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def _routed(authz: AS) -> httpx2.AsyncClient:
    """The generic path: the ``/token`` route through Starlette (no fast path)."""
    app = authz.app

    async def through_starlette(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=through_starlette), base_url=ISSUER)


def _exchanged(authz: AS) -> list[dict[str, Any]]:
    authz.ctx.audit.flush()
    return [
        {"client_id": e.client_id, "subject": e.subject, "resource": e.resource, "outcome": e.outcome, **e.detail}
        for e in authz.ctx.store.list_audit(0, 10_000)
        if e.event == "token.exchanged"
    ]


def _fast(authz: AS) -> Any:
    return authz.app.state.server.fast_exchange


async def _same_answer(authz: AS, post: Callable[[httpx2.AsyncClient], Any]) -> dict[str, Any]:
    """Ask the same thing both ways; everything but the token's ``iat``/``exp``/``jti`` must be equal."""
    calls: list[Any] = []
    fast = _fast(authz)
    original = fast.answer

    def spy(scope: dict[str, Any], body: bytes) -> Any:
        calls.append(answer := original(scope, body))
        return answer

    fast.answer = spy
    try:
        async with _routed(authz) as routed:
            slow_r = await post(routed)
            fast_r = await post(authz.http)
    finally:
        fast.answer = original
    assert len(calls) == 1 and calls[0] is not None  # the fast path answered the second one
    assert slow_r.status_code == fast_r.status_code == 200, (slow_r.text, fast_r.text)
    assert slow_r.headers.multi_items() == fast_r.headers.multi_items()
    slow_body, fast_body = slow_r.json(), fast_r.json()
    assert list(slow_body) == list(fast_body)
    slow_token, fast_token = slow_body.pop("access_token"), fast_body.pop("access_token")
    assert slow_body == fast_body
    assert slow_r.content.replace(slow_token.encode(), b"") == fast_r.content.replace(fast_token.encode(), b"")
    assert slow_token.split(".")[0] == fast_token.split(".")[0]
    slow_claims, fast_claims = _part(slow_token, 1), _part(fast_token, 1)
    assert list(slow_claims) == list(fast_claims)
    for claims in (slow_claims, fast_claims):
        claims.pop("jti"), claims.pop("iat"), claims.pop("exp")
    assert slow_claims == fast_claims
    assert (await authz.introspect(fast_token))["active"] is True
    records = _exchanged(authz)[-2:]
    for record in records:
        record.pop("jti")
    assert records[0] == records[1]
    return fast_claims


def _post(reg: Any, subject: str, **form: str) -> Callable[[httpx2.AsyncClient], Any]:
    data = {"grant_type": TE, "resource": RESOURCE, "subject_token_type": AT, "subject_token": subject, **form}
    return lambda http: http.post("/token", data=data, auth=(reg.client_id, reg.client_secret or ""))


async def test_another_clients_token_exchanged_by_an_agent_is_the_generic_answer(authz: AS) -> None:
    other = authz.machine_client("other-client")
    subject = (await authz.client_credentials(other, scope="tools:read tools:write")).json()["access_token"]
    reg = agent(authz)
    claims = await _same_answer(authz, _post(reg, subject, scope="tools:read"))
    assert claims["sub"] == "other-client" and claims["act"] == {"sub": "agent-1", "client_id": "agent-1"}
    assert claims["scope"] == "tools:read"
    assert _exchanged(authz)[-1]["policies"]
    assert (await _same_answer(authz, _post(reg, subject)))["scope"] == "tools:read tools:write"  # all it holds


async def test_act_chain_may_act_workflow_and_sid_are_the_generic_ones(authz: AS) -> None:
    reg = agent(authz)
    prior = {"sub": "agent-0", "client_id": "agent-0"}
    subject = mint(authz, lifetime=100_000, act=prior, may_act={"sub": "agent-1"}, workflow="wf-1")
    claims = await _same_answer(authz, _post(reg, subject, scope="tools:read"))
    assert claims["act"] == {"sub": "agent-1", "client_id": "agent-1", "act": prior}
    assert claims["workflow"] == "wf-1"
    own = mint(authz, subject="agent-1", client_id="agent-1", lifetime=100_000)
    assert "act" not in await _same_answer(authz, _post(reg, own, scope="tools:read"))


def _scope(body: bytes, *headers: tuple[bytes, bytes], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "method": "POST", "path": "/token", "query_string": query,
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), *headers],
    }  # fmt: skip


async def test_anything_but_a_plain_valid_request_is_left_to_the_generic_path(authz: AS) -> None:
    reg = agent(authz)
    fast = _fast(authz)
    subject = mint(authz, lifetime=100_000)
    q = urllib.parse.quote
    good = f"grant_type={q(TE, safe='')}&resource={q(RESOURCE, safe='')}&scope=tools%3Aread"
    good += f"&subject_token_type={q(AT, safe='')}&subject_token={subject}"
    basic = (b"authorization", b"Basic " + base64.b64encode(f"{reg.client_id}:{reg.client_secret}".encode()))
    assert fast.answer(_scope(good.encode(), basic), good.encode()) is not None
    wrong = (b"authorization", b"Basic " + base64.b64encode(f"{reg.client_id}:nope".encode()))
    plain = authz.machine_client("no-exchange")  # may not use the grant
    no_grant = (b"authorization", b"Basic " + base64.b64encode(f"{plain.client_id}:{plain.client_secret}".encode()))
    revoked = mint(authz, lifetime=100_000)
    authz.ctx.revocations.revoke("jti", _part(revoked, 1)["jti"], _part(revoked, 1)["exp"])
    cases: list[tuple[str, list[tuple[bytes, bytes]], bytes]] = [
        (good, [wrong], b""),
        (good, [no_grant], b""),
        (good, [basic, (b"dpop", b"x")], b""),
        (good, [basic, basic], b""),
        (good, [basic], b"x=1"),
        (good, [], b""),
        (good + "&scope=tools%3Aread", [basic], b""),  # repeated
        (good + "&actor_token=x&actor_token_type=" + q(AT, safe=""), [basic], b""),
        (good + "&audience=" + q(RESOURCE, safe=""), [basic], b""),
        (good.replace("tools%3Aread", "files%3Aread"), [basic], b""),  # not held
        (good.replace("tools%3Aread", "%22"), [basic], b""),  # malformed scope
        (good.replace(q(RESOURCE, safe=""), "http%3A%2F%2F127.0.0.1%3A1%2Funknown"), [basic], b""),
        (good.replace(subject, subject[:-4] + "AAAA"), [basic], b""),  # bad signature
        (good.replace(subject, revoked), [basic], b""),
        (good.replace(subject, mint(authz, lifetime=100_000, may_act={"sub": "someone"})), [basic], b""),
        (good.replace(q(AT, safe=""), q("urn:ietf:params:oauth:token-type:jwt", safe="")), [basic], b""),
    ]
    for body, headers, query in cases:
        assert fast.answer(_scope(body.encode(), *headers, query=query), body.encode()) is None, (body, headers)


async def test_refusals_are_answered_and_audited_by_the_generic_path(authz: AS) -> None:
    reg = agent(authz)
    subject = mint(authz, lifetime=100_000, may_act={"sub": "someone"})
    r = await _post(reg, subject, scope="tools:read")(authz.http)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    authz.ctx.audit.flush()
    refused = [e for e in authz.ctx.store.list_audit(0, 10_000) if e.event == "token.refused"]
    assert refused and refused[-1].client_id == reg.client_id
