"""The agent state machine and its effect on tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle as lc
from authz.identity.agents.errors import Conflict, Invalid, NotFound
from authz.storage.models import Agent
from tests.authz.conftest import AS
from tests.authz.identity.agents.conftest import body, deps, next_second, secret_token

pytestmark = pytest.mark.anyio

ACTIONS: dict[str, Callable[..., Agent]] = {
    "suspend": lc.suspend_agent,
    "reinstate": lc.reinstate_agent,
    "revoke": lc.revoke_agent,
    "update": lambda d, agent_id, actor: lc.update_agent(d, agent_id, name="renamed", actor=actor),
}
# (state the agent is in, action) -> the state after it, or None for 409
MATRIX: dict[tuple[str, str], str | None] = {
    ("active", "suspend"): "suspended",
    ("active", "reinstate"): None,
    ("active", "revoke"): "revoked",
    ("active", "update"): "active",
    ("suspended", "suspend"): None,
    ("suspended", "reinstate"): "active",
    ("suspended", "revoke"): "revoked",
    ("suspended", "update"): "suspended",
    ("revoked", "suspend"): None,
    ("revoked", "reinstate"): None,
    ("revoked", "revoke"): None,
    ("revoked", "update"): None,
}


def _in_state(server: AS, status: str) -> Agent:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="test")
    if status == "suspended":
        lc.suspend_agent(d, agent.id, actor="test")
    elif status == "revoked":
        lc.revoke_agent(d, agent.id, actor="test")
    return agent


@pytest.mark.parametrize(("start", "action"), list(MATRIX))
async def test_every_transition(server: AS, start: str, action: str) -> None:
    agent = _in_state(server, start)
    expected = MATRIX[(start, action)]
    d = deps(server)
    if expected is None:
        with pytest.raises(Conflict):
            ACTIONS[action](d, agent.id, actor="test")
        after = server.ctx.store.get_agent(agent.id)
        assert after is not None and after.status == start and after.name == "bot"  # nothing changed
    else:
        result = ACTIONS[action](d, agent.id, actor="test")
        assert result.status == expected
        stored = server.ctx.store.get_agent(agent.id)
        assert stored is not None and stored.status == expected


async def test_revoked_agent_refuses_credential_changes(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="test")
    cred = creds.issue_credential(d, agent.id, kind="secret", actor="test").credential
    lc.revoke_agent(d, agent.id, actor="test")
    assert [c.status for c in server.ctx.store.list_credentials(agent.id)] == ["revoked"]
    with pytest.raises(Conflict):
        creds.issue_credential(d, agent.id, kind="secret", actor="test")
    with pytest.raises(Conflict):
        creds.rotate_credential(d, agent.id, cred.id, actor="test")
    with pytest.raises(Conflict):
        creds.revoke_credential(d, agent.id, cred.id, actor="test")
    assert lc.get_agent(d, agent.id).status == "revoked"  # reads still work


async def test_unknown_agent_is_not_found(server: AS) -> None:
    d = deps(server)
    for call in (
        lambda: lc.get_agent(d, "agt_nope"),
        lambda: lc.suspend_agent(d, "agt_nope", actor="t"),
        lambda: creds.issue_credential(d, "agt_nope", kind="secret", actor="t"),
        lambda: creds.list_credentials(d, "agt_nope"),
    ):
        with pytest.raises(NotFound):
            call()


async def test_create_validates_everything_before_writing(server: AS) -> None:
    d = deps(server)
    with pytest.raises(Invalid) as info:
        lc.create_agent(d, name=" ", tags=["ok", "bad tag!"], team="no-such-team", owner="nobody", actor="t")
    assert {f for f, _ in info.value.errors} == {"name", "tags", "team", "owner"}
    assert server.ctx.store.list_agents() == []


async def test_create_with_team_owner_tags_and_update(server: AS) -> None:
    d = deps(server)
    team = lc.create_team(d, name="payments", actor="t")
    with pytest.raises(Conflict):
        lc.create_team(d, name="payments", actor="t")
    agent = lc.create_agent(d, name="bot", team="payments", owner="alice", tags=["a", "b", "a"], actor="t")
    assert (agent.team_id, agent.owner, agent.tags) == (team.id, server.users["alice"].id, ["a", "b"])
    client = server.ctx.directory.client(agent.id)
    assert client is not None and client.kind == "agent" and client.agent_id == agent.id
    assert client.team_id == team.id and client.allowed_resources is None
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in client.grant_types
    updated = lc.update_agent(d, agent.id, team=None, tags=[], description="x", actor="t")
    assert (updated.team_id, updated.tags, updated.description) == (None, [], "x")
    client = server.ctx.directory.client(agent.id)
    assert client is not None and client.team_id is None


async def test_secret_works_and_token_names_agent_and_team(server: AS) -> None:
    d = deps(server)
    team = lc.create_team(d, name="ops", actor="t")
    agent = lc.create_agent(d, name="bot", team=team.id, actor="t")
    issued = creds.issue_credential(d, agent.id, kind="secret", actor="t")
    assert issued.secret and len(issued.secret) >= 43  # 256 bits, base64url
    r = await secret_token(server, agent.id, issued.secret)
    assert r.status_code == 200, r.text
    claims = await server.introspect(body(r)["access_token"])
    assert claims["active"] is True
    assert claims["agent"] == agent.id and claims["team"] == team.id
    assert claims["client_id"] == claims["sub"] == agent.id
    # client_secret_post works too; a wrong secret does not
    r = await server.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": "http://127.0.0.1:9200/mcp", "client_id": agent.id,
              "client_secret": issued.secret},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (await secret_token(server, agent.id, "wrong")).status_code == 401


async def test_agent_without_credentials_cannot_authenticate(server: AS) -> None:
    agent = lc.create_agent(deps(server), name="bot", actor="t")
    assert (await secret_token(server, agent.id, "anything")).status_code == 401


async def test_suspend_kills_live_tokens_and_refuses_new_reinstate_allows_new(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    secret = creds.issue_credential(d, agent.id, kind="secret", actor="t").secret
    assert secret
    old = body(await secret_token(server, agent.id, secret))["access_token"]
    assert (await server.introspect(old))["active"] is True

    lc.suspend_agent(d, agent.id, actor="t")
    assert (await server.introspect(old)) == {"active": False}
    refused = await secret_token(server, agent.id, secret)
    assert refused.status_code in (400, 401)
    assert body(refused)["error"] in ("invalid_client", "unauthorized_client")

    next_second()
    lc.reinstate_agent(d, agent.id, actor="t")
    new = await secret_token(server, agent.id, secret)
    assert new.status_code == 200, new.text
    assert (await server.introspect(body(new)["access_token"]))["active"] is True
    assert (await server.introspect(old)) == {"active": False}  # old tokens stay dead


async def test_revoke_is_permanent(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    secret = creds.issue_credential(d, agent.id, kind="secret", actor="t").secret
    assert secret
    token = body(await secret_token(server, agent.id, secret))["access_token"]
    lc.revoke_agent(d, agent.id, actor="t")
    assert (await server.introspect(token)) == {"active": False}
    assert (await secret_token(server, agent.id, secret)).status_code in (400, 401)
    next_second()
    with pytest.raises(Conflict):
        lc.reinstate_agent(d, agent.id, actor="t")
    # even an operator re-enabling the client row does not bring a revoked agent back
    server.ctx.store.set_client_status(agent.id, "active")
    server.ctx.directory.invalidate("client", agent.id)
    assert (await secret_token(server, agent.id, secret)).status_code in (400, 401)


async def test_lifecycle_is_audited_without_secrets(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="admin-1")
    issued = creds.issue_credential(d, agent.id, kind="secret", actor="admin-1")
    new, _old = creds.rotate_credential(d, agent.id, issued.credential.id, actor="admin-1")
    lc.suspend_agent(d, agent.id, actor="admin-1", reason="incident 42")
    server.ctx.audit.flush()
    events = [e for e in server.ctx.store.list_audit(0, 1000) if e.client_id == agent.id]
    assert [e.event for e in events] == ["agent.created", "credential.issued", "credential.rotated", "agent.suspended"]
    assert all(e.detail.get("actor") == "admin-1" for e in events)
    dumped: list[Any] = [(e.detail, e.reason, e.subject) for e in server.ctx.store.list_audit(0, 1000)]
    for secret in (issued.secret, new.secret):
        assert secret and secret not in repr(dumped)
        assert server.ctx.keyring.digest(secret) not in repr(dumped)
