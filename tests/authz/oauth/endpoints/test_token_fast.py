"""The client_credentials fast path answers exactly as the generic (Authlib) path, and only plain, valid requests."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from authz.identity.agents.credentials import issue_credential
from authz.identity.agents.lifecycle import Agents, create_agent, create_team
from authz.identity.directory import ResourceInfo
from dpop import DpopKey
from tests.authz.conftest import AS, ISSUER, RESOURCE, ASFactory

pytestmark = pytest.mark.anyio
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
async def authz(db_url: str, as_factory: ASFactory) -> AS:
    """The authorization server on SQLite, then on PostgreSQL (the database set up first, dropped last)."""
    return await as_factory(database_url=db_url, dev_mode=True)


def _part(token: str, i: int) -> dict[str, Any]:
    part = token.split(".")[i]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def _routed(authz: AS) -> httpx2.AsyncClient:
    """The generic path: the ``/token`` route through Starlette (no direct dispatch, no fast path)."""
    app = authz.app

    async def through_starlette(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=through_starlette), base_url=ISSUER)


def _issued(authz: AS) -> list[dict[str, Any]]:
    authz.ctx.audit.flush()
    return [
        {"client_id": e.client_id, "subject": e.subject, "resource": e.resource, "outcome": e.outcome, **e.detail}
        for e in authz.ctx.store.list_audit(0, 10_000)
        if e.event == "token.issued"
    ]


def _fast(authz: AS) -> Any:
    return authz.app.state.server.fast_client_credentials


async def _same_answer(authz: AS, post: Callable[[httpx2.AsyncClient], Any]) -> dict[str, Any]:
    """Ask the same thing both ways; everything but the token's ``iat``/``exp``/``jti`` must be equal."""
    before = len(_fast(authz)._templates)
    async with _routed(authz) as routed:
        slow = await post(routed)
        fast = await post(authz.http)
    assert len(_fast(authz)._templates) == before + 1  # the fast path answered the second one
    assert slow.status_code == fast.status_code == 200, (slow.text, fast.text)
    assert slow.headers.multi_items() == fast.headers.multi_items()
    slow_body, fast_body = slow.json(), fast.json()
    assert list(slow_body) == list(fast_body)
    slow_token, fast_token = slow_body.pop("access_token"), fast_body.pop("access_token")
    assert slow_body == fast_body
    assert slow.content.replace(slow_token.encode(), b"") == fast.content.replace(fast_token.encode(), b"")
    assert slow_token.split(".")[0] == fast_token.split(".")[0]  # the JOSE header
    slow_claims, fast_claims = _part(slow_token, 1), _part(fast_token, 1)
    assert list(slow_claims) == list(fast_claims)  # same claims in the same order
    for claims in (slow_claims, fast_claims):
        assert claims["exp"] - claims["iat"] == authz.settings.access_token_ttl
        assert uuid.UUID(hex=claims.pop("jti")).version == 4
        claims.pop("iat"), claims.pop("exp")
    assert slow_claims == fast_claims
    assert (await authz.introspect(fast_token))["active"] is True
    records = _issued(authz)[-2:]
    for record in records:
        record.pop("jti")
    assert records[0] == records[1]
    return fast_claims


async def test_client_secret_basic_answer_is_the_generic_one(authz: AS) -> None:
    reg = authz.machine_client()
    data = {"grant_type": "client_credentials", "resource": RESOURCE, "scope": "tools:read"}
    auth = (reg.client_id, reg.client_secret or "")
    claims = await _same_answer(authz, lambda http: http.post("/token", data=data, auth=auth))
    assert claims["scope"] == "tools:read" and claims["aud"] == RESOURCE
    records = _issued(authz)
    assert records[-1]["policies"]  # the builtin policy set decided, and is named in the record
    data.pop("scope")  # everything permitted
    assert (await _same_answer(authz, lambda http: http.post("/token", data=data, auth=auth)))["scope"] == (
        "tools:read tools:write"
    )


async def test_an_agent_token_carries_its_agent_and_team_as_the_generic_one(authz: AS) -> None:
    deps = Agents.from_context(authz.ctx)
    team = create_team(deps, name="fast-team", actor="test")
    row = create_agent(deps, name="fast-agent", team=team.id, actor="test")
    issued = issue_credential(deps, row.id, kind="secret", actor="test")
    data = {"grant_type": "client_credentials", "resource": RESOURCE}
    auth = (row.id, issued.secret or "")
    claims = await _same_answer(authz, lambda http: http.post("/token", data=data, auth=auth))
    assert claims["agent"] == row.id and claims["team"] == team.id


@pytest.mark.parametrize(
    ("alg", "make_key"),
    [
        ("ES256", lambda: ECKey.generate_key("P-256", auto_kid=True)),
        ("EdDSA", lambda: OKPKey.generate_key("Ed25519", auto_kid=True)),
        ("Ed25519", lambda: OKPKey.generate_key("Ed25519", auto_kid=True)),
        ("RS256", lambda: RSAKey.generate_key(2048, auto_kid=True)),
    ],
)
async def test_private_key_jwt_answer_is_the_generic_one(authz: AS, alg: str, make_key: Callable[[], Any]) -> None:
    key = make_key()
    cid = "pkjwt-fast"
    authz.client(client_id=cid, auth_method="private_key_jwt", grant_types=["client_credentials"],
                 jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip

    def post(http: httpx2.AsyncClient) -> Any:
        now = int(time.time())
        claims = {"iss": cid, "sub": cid, "aud": ISSUER, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # joserfc: "EdDSA is deprecated via RFC 9864"
            signed = jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])
        data = {"grant_type": "client_credentials", "resource": RESOURCE, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": signed}  # fmt: skip
        return http.post("/token", data=data)

    assert (await _same_answer(authz, post))["client_id"] == cid


async def test_a_replayed_assertion_is_refused_and_audited_by_the_generic_path(authz: AS) -> None:
    """RFC 7523 §3: the fast path remembers the ``jti`` (group commit); the replay gets the generic
    path's refusal and ``token.refused`` record, and no token."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    cid = "pkjwt-replay"
    authz.client(client_id=cid, auth_method="private_key_jwt", grant_types=["client_credentials"],
                 jwks={"keys": [key.as_dict(private=False)]})  # fmt: skip
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": ISSUER, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    data = {"grant_type": "client_credentials", "resource": RESOURCE, "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)}  # fmt: skip
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in data.items()).encode()
    pending = _fast(authz).answer(_scope(body), body)
    assert pending is not None  # the fast path takes it
    first = await authz.http.post("/token", data=data)
    assert first.status_code == 200
    again = await authz.http.post("/token", data=data)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    authz.ctx.audit.flush()
    refused = [e for e in authz.ctx.store.list_audit(0, 10_000) if e.event == "token.refused"]
    assert refused[-1].reason == "client_assertion_replay"
    assert [r["jti"] for r in _issued(authz) if r["client_id"] == cid] == [
        _part(first.json()["access_token"], 1)["jti"]
    ]


def _scope(body: bytes, *headers: tuple[bytes, bytes], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "method": "POST", "path": "/token", "query_string": query,
        "headers": [(b"content-type", b"application/x-www-form-urlencoded"), *headers],
    }  # fmt: skip


async def test_anything_but_a_plain_valid_request_is_left_to_the_generic_path(authz: AS) -> None:
    reg = authz.machine_client()
    fast = _fast(authz)
    good = f"grant_type=client_credentials&resource={RESOURCE}&scope=tools%3Aread".encode()
    basic = (b"authorization", b"Basic " + base64.b64encode(f"{reg.client_id}:{reg.client_secret}".encode()))
    assert fast.answer(_scope(good, basic), good) is not None
    wrong = (b"authorization", b"Basic " + base64.b64encode(f"{reg.client_id}:nope".encode()))
    for body, headers, query in [
        (good, [wrong], b""),
        (good, [basic, (b"dpop", b"x")], b""),
        (good, [basic, basic], b""),
        (good, [basic], b"x=1"),
        (good + b"&scope=tools%3Aread", [basic], b""),  # repeated
        (good + b"&client_id=" + reg.client_id.encode(), [basic], b""),  # another parameter
        (good.replace(b"tools%3Aread", b"files%3Aread"), [basic], b""),  # nothing grantable
        (good.replace(b"tools%3Aread", b"%22"), [basic], b""),  # malformed scope
        (good.replace(RESOURCE.encode(), b"http://127.0.0.1:1/unknown"), [basic], b""),
        (good.replace(b"client_credentials", b"password"), [basic], b""),
        (b"grant_type=client_credentials&scope=tools%3Aread", [basic], b""),  # no resource
        (good, [], b""),  # no client authentication
        (good, [(b"authorization", b"Basic ")], b""),
        (good, [(b"authorization", b"Bearer " + basic[1][6:])], b""),
        (good, [(b"authorization", b"Basic " + base64.b64encode(b"\xff:x"))], b""),
    ]:
        assert fast.answer(_scope(body, *headers, query=query), body) is None, (body, headers, query)
    assert fast.answer({**_scope(good, basic), "headers": [basic]}, good) is None  # no content type


async def test_a_template_follows_client_resource_and_policy_changes(authz: AS) -> None:
    reg = authz.machine_client()
    assert (await authz.client_credentials(reg, scope="tools:read tools:write")).json()["scope"] == (
        "tools:read tools:write"
    )
    directory = authz.ctx.directory
    directory.resource(RESOURCE)
    directory._resources[RESOURCE] = ResourceInfo(RESOURCE, "demo", frozenset({"tools:read"}), True)
    assert (await authz.client_credentials(reg, scope="tools:read tools:write")).json()["scope"] == "tools:read"
    authz.ctx.policy.swap(None)  # policies off: no deciding policy in the record
    assert (await authz.client_credentials(reg, scope="tools:read")).status_code == 200
    assert "policies" not in _issued(authz)[-1]
    authz.ctx.store.set_client_status(reg.client_id, "disabled")
    directory.invalidate("client", reg.client_id)
    r = await authz.client_credentials(reg, scope="tools:read")
    assert r.status_code in (400, 401) and r.json()["error"] in ("unauthorized_client", "invalid_client")


async def test_a_dpop_answer_is_the_generic_one(authz: AS) -> None:
    """RFC 9449 §5: the fast path binds the token to the proof key exactly as the generic path does."""
    reg = authz.machine_client()
    key = DpopKey.generate()
    data = {"grant_type": "client_credentials", "resource": RESOURCE, "scope": "tools:read"}
    auth = (reg.client_id, reg.client_secret or "")

    def post(http: httpx2.AsyncClient) -> Any:
        return http.post("/token", data=data, auth=auth, headers={"DPoP": key.proof("POST", ISSUER + "/token")})

    claims = await _same_answer(authz, post)
    assert claims["cnf"] == {"jkt": key.jkt}
    replayed = {"DPoP": key.proof("POST", ISSUER + "/token")}
    first = await authz.http.post("/token", data=data, auth=auth, headers=replayed)
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    again = await authz.http.post("/token", data=data, auth=auth, headers=replayed)
    assert again.status_code == 400 and again.json()["error"] == "invalid_dpop_proof"  # refused by the generic way
    assert _issued(authz)[-1]["jti"] == _part(first.json()["access_token"], 1)["jti"]  # no token for the replay
