"""The SSF transmitter in process, on SQLite and PostgreSQL: discovery, streams, RFC 8936 poll, SETs."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle as lc
from authz.signals.sets import CREDENTIAL_CHANGE, SESSION_REVOKED, VERIFICATION
from tests.authz.conftest import AS, ISSUER, RESOURCE
from tests.authz.identity.agents.conftest import agents_db_url, body, deps, engines_to_dispose, secret_token, server

__all__ = ["agents_db_url", "engines_to_dispose", "server"]

pytestmark = pytest.mark.anyio

POLL = "urn:ietf:rfc:8936"


def rs_auth(server: AS) -> tuple[str, str]:
    assert server.rs.client_secret is not None
    return server.rs.client_id, server.rs.client_secret


async def create_stream(server: AS, **extra: Any) -> dict[str, Any]:
    r = await server.http.post("/ssf/stream", json={"delivery": {"method": POLL}, **extra}, auth=rs_auth(server))
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


async def poll(server: AS, stream: dict[str, Any], **req: Any) -> dict[str, Any]:
    path = stream["delivery"]["endpoint_url"].removeprefix(ISSUER)
    r = await server.http.post(path, json={"returnImmediately": True, **req}, auth=rs_auth(server))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    out: dict[str, Any] = r.json()
    return out


async def verified(server: AS, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = KeySet.import_key_set((await server.http.get("/jwks")).json())
    decoded = jwt.decode(token, keys)
    return dict(decoded.header), dict(decoded.claims)


@pytest.mark.requirement("ssf:discovery")
async def test_configuration_metadata(server: AS) -> None:
    r = await server.http.get("/.well-known/ssf-configuration")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["issuer"] == ISSUER  # SSF §7.1: identical to the SETs' iss
    assert doc["jwks_uri"] == ISSUER + "/jwks"
    assert doc["delivery_methods_supported"] == [POLL]
    assert doc["configuration_endpoint"] == ISSUER + "/ssf/stream"
    assert doc["critical_subject_members"] == ["agent"]
    assert doc["spec_version"] == "1_0"


@pytest.mark.requirement("ssf:management-auth")
async def test_stream_management_needs_a_resource_server(server: AS) -> None:
    assert (await server.http.post("/ssf/stream", json={})).status_code == 401
    assert (await server.http.post("/ssf/stream", json={}, auth=(server.rs.client_id, "wrong"))).status_code == 401
    machine = server.machine_client()
    assert machine.client_secret is not None
    r = await server.http.post("/ssf/stream", json={}, auth=(machine.client_id, machine.client_secret))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic")


@pytest.mark.requirement("ssf:stream-config")
@pytest.mark.requirement("ssf:update-transmitter-fields")
async def test_create_read_update_delete_stream(server: AS) -> None:
    created = await create_stream(server, events_requested=[SESSION_REVOKED, "urn:unknown"], description="rs 1")
    assert created["iss"] == ISSUER
    assert created["aud"] == RESOURCE
    assert created["delivery"] == {"method": POLL, "endpoint_url": f"{ISSUER}/ssf/poll/{created['stream_id']}"}
    assert created["events_delivered"] == [SESSION_REVOKED]  # unknown values are ignored
    sid = created["stream_id"]

    listed = (await server.http.get("/ssf/stream", auth=rs_auth(server))).json()
    assert [s["stream_id"] for s in listed] == [sid]
    other = server.other_rs
    assert other.client_secret is not None
    assert (await server.http.get("/ssf/stream", auth=(other.client_id, other.client_secret))).json() == []
    r = await server.http.get("/ssf/stream", params={"stream_id": sid}, auth=(other.client_id, other.client_secret))
    assert r.status_code == 404  # another receiver's stream does not exist for it

    patched = await server.http.patch("/ssf/stream", json={"stream_id": sid, "description": "x"}, auth=rs_auth(server))
    assert patched.status_code == 200 and patched.json()["description"] == "x"
    assert patched.json()["events_requested"] == [SESSION_REVOKED, "urn:unknown"]  # PATCH leaves the rest
    wrong = await server.http.patch("/ssf/stream", json={"stream_id": sid, "aud": "x"}, auth=rs_auth(server))
    assert wrong.status_code == 400 and wrong.json()["err"] == "invalid_request"
    replaced = await server.http.put("/ssf/stream", json={"stream_id": sid}, auth=rs_auth(server))
    assert replaced.status_code == 200 and "description" not in replaced.json()  # PUT resets what is missing

    push = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rs/events"}}
    assert (await server.http.post("/ssf/stream", json=push, auth=rs_auth(server))).status_code == 400
    assert (await server.http.request("DELETE", "/ssf/stream", params={"stream_id": sid}, auth=rs_auth(server))
            ).status_code == 204  # fmt: skip
    assert (await server.http.get("/ssf/stream", params={"stream_id": sid}, auth=rs_auth(server))).status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        b"[",
        b"[" * 5000 + b"]" * 5000,
        b'"x"',
        b'{"maxEvents": -1}',
        b'{"maxEvents": true}',
        b'{"ack": "x"}',
        b'{"returnImmediately": "yes"}',
        b'{"setErrs": []}',
    ],
)
async def test_bad_poll_requests_are_400_and_change_nothing(server: AS, payload: bytes) -> None:
    stream = await create_stream(server)
    path = stream["delivery"]["endpoint_url"].removeprefix(ISSUER)
    r = await server.http.post(path, content=payload, auth=rs_auth(server))
    assert r.status_code == 400
    assert r.json()["err"] == "invalid_request"


@pytest.mark.requirement("ssf:set-profile")
@pytest.mark.requirement("caep:session-revoked-timestamp")
@pytest.mark.requirement("rfc8936:ack-releases")
async def test_suspend_sends_a_signed_session_revoked_set(server: AS) -> None:
    stream = await create_stream(server)
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    assert (await poll(server, stream))["sets"] == {}
    suspended = lc.suspend_agent(d, agent.id, actor="t")

    got = await poll(server, stream)
    assert len(got["sets"]) == 1 and got["moreAvailable"] is False
    jti, token = next(iter(got["sets"].items()))
    header, claims = await verified(server, token)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256"
    assert claims["iss"] == ISSUER and claims["aud"] == RESOURCE and claims["jti"] == jti
    assert "sub" not in claims and "exp" not in claims  # SSF §4.1.2, §4.1.7
    assert claims["sub_id"] == {"format": "complex", "agent": {"format": "opaque", "id": agent.id}}
    event = claims["events"][SESSION_REVOKED]
    assert event["event_timestamp"] == suspended.status_changed_at
    assert event["initiating_entity"] == "admin"
    assert claims["txn"].startswith("revocation-")

    again = await poll(server, stream)
    assert list(again["sets"]) == [jti]  # not acknowledged: delivered again
    assert (await poll(server, stream, ack=[jti]))["sets"] == {}


@pytest.mark.requirement("ssf:txn")
async def test_revoke_adds_credential_change_with_the_same_txn(server: AS) -> None:
    stream = await create_stream(server)
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    lc.revoke_agent(d, agent.id, actor="t")
    sets = (await poll(server, stream))["sets"]
    claims = [(await verified(server, t))[1] for t in sets.values()]
    types = sorted(next(iter(c["events"])) for c in claims)
    assert types == sorted([SESSION_REVOKED, CREDENTIAL_CHANGE])
    assert len({c["txn"] for c in claims}) == 1
    change = next(c for c in claims if CREDENTIAL_CHANGE in c["events"])["events"][CREDENTIAL_CHANGE]
    assert change["change_type"] == "revoke"


async def test_token_and_client_revocations_are_sent(server: AS) -> None:
    stream = await create_stream(server)
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    secret = creds.issue_credential(d, agent.id, kind="secret", actor="t").secret
    assert secret
    token = body(await secret_token(server, agent.id, secret))["access_token"]
    r = await server.http.post("/revoke", data={"token": token}, auth=(agent.id, secret))
    assert r.status_code == 200
    server.ctx.revocations.revoke("client", "some-client", 2**40)
    subjects = [(await verified(server, t))[1]["sub_id"] for t in (await poll(server, stream))["sets"].values()]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert {"format": "jwt_id", "iss": ISSUER, "jti": claims["jti"]} in subjects
    assert {"format": "complex", "application": {"format": "opaque", "id": "some-client"}} in subjects


@pytest.mark.requirement("rfc8936:long-poll")
async def test_a_long_poll_answers_as_soon_as_an_agent_is_suspended(server: AS) -> None:
    stream = await create_stream(server)
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    path = stream["delivery"]["endpoint_url"].removeprefix(ISSUER)
    waiting = asyncio.create_task(server.http.post(path, json={}, auth=rs_auth(server), timeout=30))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # held open: nothing to send yet
    await asyncio.to_thread(lc.suspend_agent, d, agent.id, actor="t")
    r: httpx2.Response = await asyncio.wait_for(waiting, 15)  # far below AUTHZ_SSF_POLL_WAIT (20 s)
    assert r.status_code == 200 and len(r.json()["sets"]) == 1


@pytest.mark.requirement("ssf:verification-event")
@pytest.mark.requirement("ssf:paused-no-transmit")
async def test_verification_event_and_status(server: AS) -> None:
    stream = await create_stream(server)
    sid = stream["stream_id"]
    r = await server.http.post("/ssf/verify", json={"stream_id": sid, "state": "abc"}, auth=rs_auth(server))
    assert r.status_code == 204
    (token,) = (await poll(server, stream))["sets"].values()
    claims = (await verified(server, token))[1]
    assert claims["events"] == {VERIFICATION: {"state": "abc"}}
    assert claims["sub_id"] == {"format": "opaque", "id": sid}

    st = await server.http.get("/ssf/status", params={"stream_id": sid}, auth=rs_auth(server))
    assert st.json() == {"stream_id": sid, "status": "enabled"}
    paused = await server.http.post(
        "/ssf/status", json={"stream_id": sid, "status": "paused", "reason": "maintenance"}, auth=rs_auth(server)
    )
    assert paused.json() == {"stream_id": sid, "status": "paused", "reason": "maintenance"}
    assert (await poll(server, stream))["sets"] == {}  # paused: nothing is transmitted
    bad = await server.http.post("/ssf/status", json={"stream_id": sid, "status": "on"}, auth=rs_auth(server))
    assert bad.status_code == 400


async def test_hostile_input_is_4xx_and_changes_nothing(server: AS) -> None:
    stream = await create_stream(server)
    sid = stream["stream_id"]
    auth = rs_auth(server)
    nul = "a\x00b"
    bad_basic = {"authorization": "Basic " + base64.b64encode(b"rs\x00x:secret").decode()}
    answers = [
        await server.http.get("/ssf/stream", params={"stream_id": nul}, auth=auth),
        await server.http.get("/ssf/stream", params={"stream_id": "x" * 10_000}, auth=auth),
        await server.http.post("/ssf/stream", json={"description": nul}, auth=auth),
        await server.http.post("/ssf/stream", json={"events_requested": [nul]}, auth=auth),
        await server.http.patch("/ssf/stream", json={"stream_id": sid, "description": nul}, auth=auth),
        await server.http.post("/ssf/status", json={"stream_id": sid, "status": "paused", "reason": nul}, auth=auth),
        await server.http.post("/ssf/verify", json={"stream_id": nul}, auth=auth),
        await server.http.post("/ssf/poll/%00", json={}, auth=auth),
        await server.http.post("/ssf/stream", json={}, headers=bad_basic),
        await server.http.post(
            "/ssf/stream", json={}, headers={"authorization": "Basic \u00ff\u00ff".encode("latin-1")}
        ),
        await server.http.post(
            "/ssf/stream", json={}, headers={"authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()}
        ),
        await server.http.post("/ssf/stream", content=b"{" * 20_000, auth=auth),
        await server.http.post("/ssf/stream", content=b"x" * 100_000, auth=auth),
    ]
    assert all(400 <= r.status_code < 500 for r in answers), [r.status_code for r in answers]
    acked = await poll(server, stream, ack=[nul, "x" * 5000], setErrs={nul: {"err": "x"}})
    assert acked == {"sets": {}, "moreAvailable": False}
    listed = (await server.http.get("/ssf/stream", auth=auth)).json()
    assert [s["stream_id"] for s in listed] == [sid] and "description" not in listed[0]
    st = await server.http.get("/ssf/status", params={"stream_id": sid}, auth=auth)
    assert st.json() == {"stream_id": sid, "status": "enabled"}
