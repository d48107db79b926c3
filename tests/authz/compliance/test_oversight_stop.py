"""Suspending an agent is the AI Act Art. 14(4)(e) stop: live tokens die and the record says so."""

from __future__ import annotations

import httpx2
import pytest

from authz.identity.agents import lifecycle as lc
from authz.identity.users import create_user
from tests.authz.compliance._helpers import audit_events, new_agent
from tests.authz.conftest import AS, ASFactory
from tests.authz.console.conftest import PASSWORD, ROLES, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.requirement("euaiact:art14-stop")]


async def test_suspension_record_carries_the_stop_basis(authz: AS) -> None:
    agent = new_agent(authz)
    deps = lc.Agents.from_context(authz.ctx)
    lc.suspend_agent(deps, agent, actor="console:olga", reason="runaway deletes")
    lc.reinstate_agent(deps, agent, actor="console:olga")
    (suspended,) = audit_events(authz, "agent.suspended")
    assert suspended["detail"]["basis"] == "AI Act Art. 14(4)(e) stop" and suspended["reason"] == "runaway deletes"
    (reinstated,) = audit_events(authz, "agent.reinstated")
    assert "basis" not in reinstated["detail"]


async def test_the_console_names_the_stop(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=False, console_roles=ROLES)
    authz.users["olga"] = create_user(authz.ctx.store, "olga", PASSWORD)
    http = httpx2.AsyncClient(transport=authz.http._transport, base_url=str(authz.http.base_url))
    olga = AS(authz.app, http, authz.rs, authz.other_rs, authz.settings, authz.users)
    assert (await sign_in(olga, "olga")).status_code == 200
    page = await http.get(f"/console/agents/{new_agent(authz)}/suspend")
    assert page.status_code == 200 and "AI Act Art. 14(4)(e)" in page.text
    await http.aclose()
