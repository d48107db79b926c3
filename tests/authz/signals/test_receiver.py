"""``resource_server``'s Shared Signals receiver against the real transmitter, in process (SQLite, PostgreSQL).

The middleware talks to the AS app through an ASGI transport: the stream is opened, SETs arrive by the
RFC 8936 long poll, the caches drop what a revocation kills, and the guard refuses cached and unseen tokens.
Crafted SETs (wrong type, audience, issuer, key, subject) are refused and reported in ``setErrs``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.types import Receive, Scope, Send

from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle as lc
from authz.signals.sets import SESSION_REVOKED
from resource_server import ResourceServerConfig, ResourceServerMiddleware
from resource_server.context import TokenInfo
from resource_server.discovery import Discovery
from resource_server.jwt import JwksCache, JwtVerifier
from resource_server.revocation import RevocationGuard, RevocationList
from resource_server.signals import SignalReceiver, _Deferred, _Refused, subject_key
from resource_server.verifier import HybridVerifier
from tests.authz.conftest import AS, ISSUER, RESOURCE
from tests.authz.identity.agents.conftest import agents_db_url, body, deps, engines_to_dispose, secret_token, server

__all__ = ["agents_db_url", "engines_to_dispose", "server"]

pytestmark = pytest.mark.anyio
MCP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {}}}


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def rs_config(server: AS, **overrides: Any) -> ResourceServerConfig:
    assert server.rs.client_secret is not None
    values: dict[str, Any] = {
        "resource": RESOURCE,
        "issuer": ISSUER,
        "client_id": server.rs.client_id,
        "client_secret": server.rs.client_secret,
        "mode": "jwt",
        "revocation_signals": True,
        **overrides,
    }
    return ResourceServerConfig(**values)


async def agent_with_token(server: AS) -> tuple[str, str]:
    agent_id, secret = new_agent(server)
    return agent_id, await token_of(server, agent_id, secret)


def new_agent(server: AS) -> tuple[str, str]:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    secret = creds.issue_credential(d, agent.id, kind="secret", actor="t").secret
    assert secret
    return agent.id, secret


async def token_of(server: AS, agent_id: str, secret: str) -> str:
    token: str = body(await secret_token(server, agent_id, secret))["access_token"]
    return token


async def until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def receiver(server: AS) -> AsyncIterator[SignalReceiver]:
    jwks = JwksCache(Discovery(ISSUER, server.http), server.http)
    rx = SignalReceiver(rs_config(server), server.http, jwks, RevocationList())
    await rx._open_stream()
    yield rx
    await rx.aclose()


@pytest.mark.parametrize("mode", ["jwt", "hybrid"])
async def test_middleware_refuses_a_cached_token_and_an_unseen_one_after_suspension(server: AS, mode: str) -> None:
    mw = ResourceServerMiddleware(ok_app, rs_config(server, mode=mode), http_client=server.http)
    agent_id, secret = new_agent(server)
    seen, unseen = await token_of(server, agent_id, secret), await token_of(server, agent_id, secret)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=mw), base_url="http://127.0.0.1:9200") as rs:

        async def call(token: str) -> int:
            r = await rs.post("/mcp", json=MCP_CALL, headers={"authorization": f"Bearer {token}"})
            return r.status_code

        assert [await call(seen) for _ in range(2)] == [200, 200]
        configured = mw._configured
        guard = configured.inner
        assert isinstance(guard, RevocationGuard)
        inner = guard.inner
        local = inner.local if isinstance(inner, HybridVerifier) else inner
        assert isinstance(local, JwtVerifier) and local.memo is not None and len(local.memo) == 1
        assert configured.receiver is not None
        await until(lambda: _true(configured.receiver and configured.receiver.connected), "the stream")

        await asyncio.to_thread(lc.suspend_agent, deps(server), agent_id, actor="t")
        await until(lambda: _true(guard.revocations.applied), "the suspension to reach the resource server")
        assert len(local.memo) == 0  # the cached validation was dropped, not only overruled
        if isinstance(inner, HybridVerifier):
            assert len(inner.revocation.cache) == 0
        assert await call(seen) == 401
        assert await call(unseen) == 401  # never seen here: refused by the cutoff
    await mw.aclose()


async def _true(value: object) -> bool:
    return bool(value)


@pytest.mark.requirement("rfc8936:ack-releases")
async def test_receiver_applies_and_acknowledges(server: AS, receiver: SignalReceiver) -> None:
    agent_id, _ = await agent_with_token(server)
    suspended = lc.suspend_agent(deps(server), agent_id, actor="t")
    acks, errs = await receiver._poll_once([], {})
    assert len(acks) == 1 and errs == {}
    info = TokenInfo.from_claims({"agent": agent_id, "iat": suspended.status_changed_at, "client_id": agent_id})
    assert receiver.revocations.refuses(info)
    later = TokenInfo.from_claims({"agent": agent_id, "iat": suspended.status_changed_at + 1})
    assert not receiver.revocations.refuses(later)  # a token issued after the cutoff (reinstated) works
    stream_rows = await asyncio.to_thread(server.app.state.signals.store.pending, receiver.stream_id, 10)
    assert [jti for jti, _ in stream_rows[0]] == acks  # held until acknowledged
    r = await server.http.post(
        f"/ssf/poll/{receiver.stream_id}",
        json={"ack": acks, "returnImmediately": True},
        auth=(server.rs.client_id, server.rs.client_secret or ""),
    )
    assert r.json()["sets"] == {}
    assert (await asyncio.to_thread(server.app.state.signals.store.pending, receiver.stream_id, 10))[0] == []


def crafted(server: AS, **claims: Any) -> tuple[str, str]:
    now = int(time.time())
    jti = uuid.uuid4().hex
    payload = {
        "iss": ISSUER,
        "jti": jti,
        "iat": now,
        "aud": RESOURCE,
        "sub_id": {"format": "complex", "agent": {"format": "opaque", "id": "agt_x"}},
        "events": {SESSION_REVOKED: {"event_timestamp": now}},
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    typ = payload.pop("_typ", "secevent+jwt")
    signer = server.ctx.keys.view.signer.retyped(typ)
    return jti, signer.sign(payload)


@pytest.mark.requirement("ssf:receiver-validates-set")
@pytest.mark.parametrize(
    ("claims", "err"),
    [
        ({"_typ": "at+jwt"}, "invalid_request"),
        ({"aud": "http://127.0.0.1:9300/mcp"}, "invalid_audience"),
        ({"iss": "http://evil.example"}, "invalid_issuer"),
        ({"sub": "agt_x"}, "invalid_request"),
        ({"exp": int(time.time()) + 60}, "invalid_request"),
    ],
)
async def test_crafted_sets_are_refused_and_change_nothing(
    server: AS, receiver: SignalReceiver, claims: dict[str, Any], err: str
) -> None:
    jti, token = crafted(server, **claims)
    with pytest.raises(_Refused) as refused:
        await receiver._apply(jti, token)
    assert refused.value.err == err
    assert len(receiver.revocations) == 0


async def test_a_set_signed_with_another_key_is_refused(server: AS, receiver: SignalReceiver) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "rogue"})
    now = int(time.time())
    claims = {"iss": ISSUER, "jti": "j1", "iat": now, "aud": RESOURCE,
              "sub_id": {"format": "complex", "agent": {"format": "opaque", "id": "agt_x"}},
              "events": {SESSION_REVOKED: {"event_timestamp": now}}}  # fmt: skip
    token = jwt.encode({"alg": "ES256", "typ": "secevent+jwt", "kid": "rogue"}, claims, key)
    with pytest.raises(_Deferred):  # an unknown key: left unacknowledged (it may be newer than our copy)
        await receiver._apply("j1", token)
    assert len(receiver.revocations) == 0
    server_kid = server.ctx.keys.view.signing_kid
    forged = jwt.encode({"alg": "ES256", "typ": "secevent+jwt", "kid": server_kid}, claims, key)
    with pytest.raises(_Refused) as refused:  # a known key, a wrong signature: refused and reported
        await receiver._apply("j1", forged)
    assert refused.value.err == "invalid_key"
    assert len(receiver.revocations) == 0


@pytest.mark.requirement("ssf:receiver-critical-member")
def test_subjects_the_receiver_acts_on() -> None:
    critical = frozenset({"agent"})
    assert subject_key({"format": "jwt_id", "iss": ISSUER, "jti": "j"}, ISSUER, critical) == ("jti", "j")
    assert subject_key({"format": "jwt_id", "iss": "http://other", "jti": "j"}, ISSUER, critical) is None
    agent = {"format": "opaque", "id": "a1"}
    assert subject_key({"format": "complex", "agent": agent}, ISSUER, critical) == ("agent", "a1")
    assert subject_key({"format": "complex", "session": agent}, ISSUER, critical) == ("sid", "a1")
    assert subject_key({"format": "complex", "application": agent}, ISSUER, critical) == ("client_id", "a1")
    # an unknown critical member: discarded, never read as a wildcard
    assert subject_key({"format": "complex", "tenant": agent}, ISSUER, frozenset({"tenant"})) is None
    # two members must both match: not decidable from one claim, so not applied
    assert subject_key({"format": "complex", "agent": agent, "session": agent}, ISSUER, critical) is None
    assert subject_key({"format": "email", "email": "a@b"}, ISSUER, critical) is None


async def test_the_stream_coming_back_after_the_as_forgot_it(server: AS, receiver: SignalReceiver) -> None:
    sid = receiver.stream_id
    auth = (server.rs.client_id, server.rs.client_secret or "")
    assert (await server.http.request("DELETE", "/ssf/stream", params={"stream_id": sid}, auth=auth)).status_code == 204
    with pytest.raises(Exception, match="gone"):
        await receiver._poll_once([], {})
    await receiver._open_stream()  # what run() does next
    assert receiver.stream_id != sid
