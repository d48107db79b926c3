"""The admin REST API: bearer auth, CRUD, lifecycle, credentials, filters and pagination, problems."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from joserfc.jwk import ECKey

from authz.identity.agents import lifecycle as lc
from authz.storage.models import Agent, Team
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS, RESOURCE
from tests.authz.identity.agents.conftest import deps, next_second, secret_token

pytestmark = pytest.mark.anyio
API = "/api/v1"
Admin = tuple[AS, dict[str, str]]


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] and body["title"]
    return body


# -- authentication ---------------------------------------------------------------------------
async def test_no_token_is_401_with_a_bearer_challenge(server: AS) -> None:
    r = await server.http.get(f"{API}/agents")
    _problem(r, 401)
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "error=" not in challenge


async def test_garbage_and_wrong_audience_tokens_are_401_invalid_token(server: AS) -> None:
    r = await server.http.get(f"{API}/agents", headers={"Authorization": "Bearer not-a-jwt"})
    _problem(r, 401)
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    machine = server.machine_client()
    token = (await server.client_credentials(machine)).json()["access_token"]  # aud = the demo MCP server
    r = await server.http.get(f"{API}/agents", headers={"Authorization": f"Bearer {token}"})
    _problem(r, 401)
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_a_client_not_explicitly_allowed_the_admin_api_is_refused(server: AS) -> None:
    """An agent may ask for any registered resource, the admin API included; its token must not work there."""
    from authz.admin.bootstrap import admin_resource_uri
    from authz.identity.agents import credentials as creds

    agent = lc.create_agent(deps(server), name="sneaky", actor="t")
    secret = creds.issue_credential(deps(server), agent.id, kind="secret", actor="t").secret
    assert secret
    r = await secret_token(server, agent.id, secret, resource=admin_resource_uri(server.settings), scope="admin:write")
    if r.status_code == 200:
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        _problem(await server.http.post(f"{API}/agents", json={"name": "x"}, headers=bearer), 401)
    assert len(server.ctx.store.list_agents()) == 1


async def test_missing_scope_is_403_insufficient_scope(server: AS) -> None:
    reader = {"Authorization": f"Bearer {await admin_token(server, 'admin:read', name='reader')}"}
    assert (await server.http.get(f"{API}/agents", headers=reader)).status_code == 200
    r = await server.http.post(f"{API}/agents", json={"name": "x"}, headers=reader)
    _problem(r, 403)
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="admin:write"' in r.headers["www-authenticate"]
    assert server.ctx.store.list_agents() == []


async def test_a_revoked_admin_token_stops_working(admin: Admin) -> None:
    server, headers = admin
    assert (await server.http.get(f"{API}/teams", headers=headers)).status_code == 200
    token = headers["Authorization"].split()[1]
    claims = server.ctx.issuer.verify(token)
    assert claims is not None
    server.ctx.revocations.revoke("jti", claims["jti"], claims["exp"])
    _problem(await server.http.get(f"{API}/teams", headers=headers), 401)


# -- CRUD and lifecycle -----------------------------------------------------------------------
async def test_agent_crud_and_lifecycle(admin: Admin) -> None:
    server, h = admin
    team = (await server.http.post(f"{API}/teams", json={"name": "payments"}, headers=h)).json()
    assert team["id"].startswith("team_")
    _problem(await server.http.post(f"{API}/teams", json={"name": "payments"}, headers=h), 409)
    assert (await server.http.get(f"{API}/teams/{team['id']}", headers=h)).json()["name"] == "payments"
    assert [t["name"] for t in (await server.http.get(f"{API}/teams", headers=h)).json()["items"]] == ["payments"]
    _problem(await server.http.get(f"{API}/teams/team_nope", headers=h), 404)

    r = await server.http.post(
        f"{API}/agents",
        json={"name": "billing bot", "team": "payments", "owner": "alice", "tags": ["prod"], "description": "d"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["id"].startswith("agt_") and agent["status"] == "active" and agent["team_id"] == team["id"]
    assert agent["owner"] == server.users["alice"].id
    aid = agent["id"]
    assert (await server.http.get(f"{API}/agents/{aid}", headers=h)).json() == agent
    _problem(await server.http.get(f"{API}/agents/agt_nope", headers=h), 404)

    r = await server.http.patch(f"{API}/agents/{aid}", json={"name": "renamed", "team": None}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["team_id"] is None
    assert r.json()["tags"] == ["prod"]

    _problem(await server.http.post(f"{API}/agents/{aid}/reinstate", headers=h), 409)
    r = await server.http.post(f"{API}/agents/{aid}/suspend", json={"reason": "incident"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    _problem(await server.http.post(f"{API}/agents/{aid}/suspend", headers=h), 409)
    next_second()
    assert (await server.http.post(f"{API}/agents/{aid}/reinstate", headers=h)).json()["status"] == "active"
    assert (await server.http.post(f"{API}/agents/{aid}/revoke", headers=h)).json()["status"] == "revoked"
    for path in ("suspend", "reinstate", "revoke"):
        _problem(await server.http.post(f"{API}/agents/{aid}/{path}", headers=h), 409)
    _problem(await server.http.patch(f"{API}/agents/{aid}", json={"name": "again"}, headers=h), 409)
    _problem(await server.http.post(f"{API}/agents/{aid}/credentials", json={"kind": "secret"}, headers=h), 409)
    assert (await server.http.get(f"{API}/agents/{aid}", headers=h)).json()["name"] == "renamed"


async def test_credentials_through_the_api(admin: Admin) -> None:
    server, h = admin
    aid = (await server.http.post(f"{API}/agents", json={"name": "bot"}, headers=h)).json()["id"]
    r = await server.http.post(f"{API}/agents/{aid}/credentials", json={"kind": "secret"}, headers=h)
    assert r.status_code == 201, r.text
    issued = r.json()
    secret, cid = issued["secret"], issued["id"]
    assert cid.startswith("cred_") and issued["kind"] == "secret" and issued["status"] == "active"
    assert (await secret_token(server, aid, secret)).status_code == 200

    r = await server.http.post(f"{API}/agents/{aid}/credentials/{cid}/rotate", json={"overlap_seconds": 60}, headers=h)
    assert r.status_code == 201, r.text
    rotated = r.json()
    new_secret = rotated["new"]["secret"]
    assert rotated["old"]["id"] == cid and rotated["old"]["expires_at"] >= int(time.time()) + 59
    assert (await secret_token(server, aid, secret)).status_code == 200
    assert (await secret_token(server, aid, new_secret)).status_code == 200
    _problem(await server.http.post(f"{API}/agents/{aid}/credentials/{cid}/rotate", headers=h), 409)

    key = ECKey.generate_key("P-256", auto_kid=True)
    r = await server.http.post(
        f"{API}/agents/{aid}/credentials", json={"kind": "public_key", "jwk": key.as_dict(private=False)}, headers=h
    )
    assert r.status_code == 201 and r.json()["kid"] == key.kid and r.json()["secret"] is None

    key_id = r.json()["id"]
    r = await server.http.post(f"{API}/agents/{aid}/credentials/{rotated['new']['id']}/revoke", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert (await secret_token(server, aid, new_secret)).status_code == 401
    _problem(await server.http.post(f"{API}/agents/{aid}/credentials/cred_nope/revoke", headers=h), 404)

    listed = await server.http.get(f"{API}/agents/{aid}/credentials", headers=h)
    statuses = {c["id"]: c["status"] for c in listed.json()["items"]}
    assert statuses == {cid: "active", rotated["new"]["id"]: "revoked", key_id: "active"}
    shown = await server.http.get(f"{API}/agents/{aid}", headers=h)
    for text in (listed.text, shown.text):
        for s in (secret, new_secret):
            assert s not in text and server.ctx.keyring.digest(s) not in text
        assert "secret_digest" not in text and '"secret":' not in text
    server.ctx.audit.flush()
    trail = repr([(e.detail, e.reason, e.subject, e.client_id) for e in server.ctx.store.list_audit(0, 1000)])
    for s in (secret, new_secret):
        assert s not in trail and server.ctx.keyring.digest(s) not in trail


# -- validation -------------------------------------------------------------------------------
BAD_CREATES: list[Any] = [
    {},
    {"name": ""},
    {"name": 5},
    {"name": "ok", "tags": "prod"},
    {"name": "ok", "tags": ["has space"]},
    {"name": "ok", "team": "no-such-team"},
    {"name": "ok", "owner": "nobody"},
    {"name": "ok", "unknown": 1},
    {"name": "x" * 256},
    ["name"],
]


@pytest.mark.parametrize("payload", BAD_CREATES, ids=[json.dumps(p)[:40] for p in BAD_CREATES])
async def test_bad_input_is_422_and_changes_nothing(admin: Admin, payload: Any) -> None:
    server, h = admin
    server.ctx.audit.flush()
    audit_before = len(server.ctx.store.list_audit(0, 10_000))
    body = _problem(await server.http.post(f"{API}/agents", json=payload, headers=h), 422)
    assert body["errors"] and all(e["field"] and e["detail"] for e in body["errors"])
    assert server.ctx.store.list_agents() == []
    server.ctx.audit.flush()
    assert len(server.ctx.store.list_audit(0, 10_000)) == audit_before


async def test_bad_credential_and_query_input_is_422(admin: Admin) -> None:
    server, h = admin
    aid = (await server.http.post(f"{API}/agents", json={"name": "bot"}, headers=h)).json()["id"]
    private = ECKey.generate_key("P-256").as_dict(private=True)
    for payload in (
        {"kind": "public_key", "jwk": private},
        {"kind": "public_key"},
        {"kind": "jwks_uri", "jwks_uri": "http://keys.example.com/jwks"},
        {"kind": "password"},
        {"kind": "secret", "jwk": {}},
    ):
        _problem(await server.http.post(f"{API}/agents/{aid}/credentials", json=payload, headers=h), 422)
    assert server.ctx.store.list_credentials(aid) == []
    r = await server.http.post(f"{API}/agents/{aid}/credentials", content=b"{nope", headers=h | {
        "content-type": "application/json"})  # fmt: skip
    _problem(r, 400)  # a syntax problem is 400 (RFC 9110 §15.5.1); 422 is for well-formed content
    for query in ("limit=0", "limit=201", "limit=x", "status=gone", "cursor=!!!"):
        body = _problem(await server.http.get(f"{API}/agents?{query}", headers=h), 422)
        assert body["errors"][0]["field"] == query.split("=")[0]
    _problem(await server.http.patch(f"{API}/agents/{aid}", json={"name": None}, headers=h), 422)


# -- filters and pagination -------------------------------------------------------------------
def _seed(server: AS, n: int) -> list[str]:
    """``n`` agents straight through the store (several share a created_at second), two teams, tags."""
    d = deps(server)
    t1, t2 = lc.create_team(d, name="red", actor="t"), lc.create_team(d, name="blue", actor="t")
    base = int(time.time()) - 10_000
    ids = []
    for i in range(n):
        agent = Agent(
            id=f"agt_{i:04d}x", name=f"Agent {i:03d}" + (" Billing" if i % 10 == 0 else ""),
            team_id=(t1 if i % 2 else t2).id, owner=None, description="", tags=["even"] if i % 2 == 0 else ["odd"],
            status="suspended" if i % 5 == 0 else "active", created_at=base + i // 3, updated_at=base,
            status_changed_at=base,
        )  # fmt: skip
        server.ctx.store.create_agent(agent, lc.agent_client_row(agent, base))
        ids.append(agent.id)
    assert isinstance(t1, Team)
    return ids


async def _all_pages(server: AS, h: dict[str, str], query: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        q = f"{API}/agents?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        r = await server.http.get(q, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


async def test_pagination_visits_every_agent_once(admin: Admin) -> None:
    server, h = admin
    ids = _seed(server, 250)
    seen = await _all_pages(server, h, "", 200)
    assert seen == ids  # creation order, no duplicates, nothing missing
    assert await _all_pages(server, h, "", 7) == ids
    default = (await server.http.get(f"{API}/agents", headers=h)).json()
    assert len(default["items"]) == 50 and default["next_cursor"]


async def test_filters(admin: Admin) -> None:
    server, h = admin
    ids = _seed(server, 60)
    idx = {a: i for i, a in enumerate(ids)}
    red = await _all_pages(server, h, "team=red", 9)
    assert red == [a for a in ids if idx[a] % 2 == 1]
    by_id = await _all_pages(server, h, f"team={server.ctx.store.get_team_by_name('red').id}", 50)  # type: ignore[union-attr]
    assert by_id == red
    assert await _all_pages(server, h, "status=suspended", 4) == [a for a in ids if idx[a] % 5 == 0]
    assert await _all_pages(server, h, "tag=even", 11) == [a for a in ids if idx[a] % 2 == 0]
    assert await _all_pages(server, h, "q=billing", 3) == [a for a in ids if idx[a] % 10 == 0]
    combined = await _all_pages(server, h, "q=billing&status=suspended&tag=even&team=blue", 2)
    assert combined == [a for a in ids if idx[a] % 10 == 0]
    assert await _all_pages(server, h, "tag=nope", 5) == []
    assert await _all_pages(server, h, "team=nope", 5) == []
    assert await _all_pages(server, h, "q=%25", 5) == []  # LIKE wildcards are literal


async def test_agent_token_at_the_demo_resource_carries_the_agent(admin: Admin) -> None:
    server, h = admin
    aid = (await server.http.post(f"{API}/agents", json={"name": "bot"}, headers=h)).json()["id"]
    secret = (await server.http.post(f"{API}/agents/{aid}/credentials", json={"kind": "secret"}, headers=h)).json()[
        "secret"
    ]
    r = await secret_token(server, aid, secret, resource=RESOURCE)
    assert r.status_code == 200
    assert (await server.introspect(r.json()["access_token"]))["agent"] == aid
