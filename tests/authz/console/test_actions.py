"""Console actions go through the domain services, are audited with the person, and a viewer (or an
operator, for admin actions) can change nothing: one test per action and role."""

from __future__ import annotations

import pytest

from authz.identity.agents import credentials as creds
from authz.identity.agents.lifecycle import Agents, create_agent
from tests.authz.console.conftest import Console, ConsoleFactory

pytestmark = pytest.mark.anyio


def _agent(c: Console, name: str = "bot") -> str:
    deps = Agents.from_context(c.authz.ctx)
    agent = create_agent(deps, name=name, actor="test")
    return agent.id


def _secret_credential(c: Console, agent_id: str) -> str:
    issued = creds.issue_credential(Agents.from_context(c.authz.ctx), agent_id, kind="secret", actor="test")
    return issued.credential.id


def _status(c: Console, agent_id: str) -> str:
    agent = c.authz.ctx.store.get_agent(agent_id)
    assert agent is not None
    return agent.status


async def test_operator_suspends_and_reinstates_audited_with_the_person(console_for: ConsoleFactory) -> None:
    c = await console_for("olga")
    agent_id = _agent(c)
    r = await c.post(f"/agents/{agent_id}/suspend", {"reason": "drill"})
    assert r.status_code == 303 and _status(c, agent_id) == "suspended"
    r = await c.post(f"/agents/{agent_id}/reinstate")
    assert r.status_code == 303 and _status(c, agent_id) == "active"
    c.authz.ctx.audit.flush()
    events = [e for e in c.authz.ctx.store.list_audit(0, 500) if e.client_id == agent_id]
    suspended = next(e for e in events if e.event == "agent.suspended")
    assert suspended.detail["actor"] == "console:olga"
    assert any(e.event == "agent.reinstated" and e.detail["actor"] == "console:olga" for e in events)


@pytest.mark.parametrize("action", ["suspend", "reinstate", "revoke"])
async def test_viewer_cannot_change_an_agent(console_for: ConsoleFactory, action: str) -> None:
    c = await console_for("victor")
    agent_id = _agent(c)
    if action == "reinstate":
        from authz.identity.agents.lifecycle import suspend_agent

        suspend_agent(Agents.from_context(c.authz.ctx), agent_id, actor="test")
    before = _status(c, agent_id)
    r = await c.post(f"/agents/{agent_id}/{action}")
    assert r.status_code == 403, r.text[:300]
    assert _status(c, agent_id) == before


async def test_operator_cannot_revoke(console_for: ConsoleFactory) -> None:
    c = await console_for("olga")
    agent_id = _agent(c)
    r = await c.post(f"/agents/{agent_id}/revoke")
    assert r.status_code == 403 and _status(c, agent_id) == "active"


async def test_admin_revokes(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    agent_id = _agent(c)
    r = await c.post(f"/agents/{agent_id}/revoke", {"reason": "gone"})
    assert r.status_code == 303 and _status(c, agent_id) == "revoked"


@pytest.mark.parametrize(("user", "action"), [("victor", "revoke"), ("victor", "rotate"), ("olga", "revoke")])
async def test_credential_actions_need_their_role(console_for: ConsoleFactory, user: str, action: str) -> None:
    c = await console_for(user)
    agent_id = _agent(c)
    cred = _secret_credential(c, agent_id)
    r = await c.post(f"/agents/{agent_id}/credentials/{cred}/{action}")
    assert r.status_code == 403
    assert [x.status for x in creds.list_credentials(Agents.from_context(c.authz.ctx), agent_id)] == ["active"]


async def test_secret_rotation_is_refused_with_the_cli_command(console_for: ConsoleFactory) -> None:
    c = await console_for("olga")
    agent_id = _agent(c)
    cred = _secret_credential(c, agent_id)
    r = await c.post(f"/agents/{agent_id}/credentials/{cred}/rotate")
    assert r.status_code == 400 and "authz agents credentials rotate" in r.text
    assert len(creds.list_credentials(Agents.from_context(c.authz.ctx), agent_id)) == 1


async def test_admin_revokes_a_credential(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    agent_id = _agent(c)
    cred = _secret_credential(c, agent_id)
    r = await c.post(f"/agents/{agent_id}/credentials/{cred}/revoke")
    assert r.status_code == 303
    assert [x.status for x in creds.list_credentials(Agents.from_context(c.authz.ctx), agent_id)] == ["revoked"]


async def test_post_without_csrf_changes_nothing(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    agent_id = _agent(c)
    r = await c.http.post(f"/console/agents/{agent_id}/suspend", data={"csrf_token": "forged"})
    assert r.status_code == 403 and _status(c, agent_id) == "active"


async def test_viewer_cannot_deploy_a_policy(console_for: ConsoleFactory) -> None:
    c = await console_for("victor")
    r = await c.post("/policies/edit", {"file": "base.cedar", "text": "", "do": "deploy"})
    assert r.status_code == 403
    assert c.authz.ctx.store.list_policy_versions() == []  # type: ignore[attr-defined]


async def test_sign_out_revokes_the_session(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    cookie = c.http.cookies.get("authz_console")
    assert cookie
    r = await c.post("/logout")
    assert r.status_code == 200 and "Signed out" in r.text
    c.http.cookies.set("authz_console", cookie, path="/console")  # a copy of the cookie is dead too
    r = await c.get("/")
    assert r.status_code == 303 and "/console/login" in r.headers["location"]
