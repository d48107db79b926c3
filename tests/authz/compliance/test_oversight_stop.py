"""Suspending an agent is the AI Act Art. 14(4)(e) stop: live tokens die and the record says so."""

from __future__ import annotations

import pytest

from authz.identity.agents import lifecycle as lc
from tests.authz.compliance._helpers import audit_events, new_agent
from tests.authz.conftest import AS

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
