"""Issuance enforcement: a hard budget that is spent refuses new tokens with ``access_denied``."""

from __future__ import annotations

import time

import pytest

from authz.budgets.model import Budget, Reservation
from authz.budgets.service import Usage
from authz.identity.agents.credentials import issue_credential
from authz.identity.agents.lifecycle import Agents, create_agent, create_team
from tests.authz.conftest import AS, RESOURCE
from tests.authz.oauth.grants.test_token_exchange import TE, user_token

pytestmark = pytest.mark.anyio


def _events(server: AS, name: str) -> list[dict[str, object]]:
    server.ctx.audit.flush()
    return [{"reason": e.reason, **e.detail} for e in server.ctx.store.list_audit(0, 10_000) if e.event == name]


def _agent(server: AS, team: str | None = None) -> tuple[str, str]:
    deps = Agents.from_context(server.ctx)
    row = create_agent(deps, name="spender" + str(time.monotonic_ns()), team=team, actor="test")
    issued = issue_credential(deps, row.id, kind="secret", actor="test")
    assert issued.secret is not None
    return row.id, issued.secret


def _spend(server: AS, budget: Budget, claims: dict[str, str], calls: int = 1) -> None:
    svc = server.ctx.budgets
    assert svc is not None
    svc.invalidate()
    for _ in range(calls):
        got = svc.reserve_for_use(claims, Usage(calls=1))
        assert isinstance(got, Reservation), got
        svc.settle(got)


def _budget(server: AS, kind: str, subject: str, limit: int, *, hard: bool = True, period: str = "day") -> Budget:
    svc = server.ctx.budgets
    assert svc is not None
    budget, _ = svc.store.create(kind, subject, metric="calls", limit=limit, period=period, hard=hard)
    svc.invalidate()
    return budget


async def _cc(server: AS, agent: str, secret: str) -> tuple[int, dict[str, object], dict[str, str]]:
    r = await server.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": RESOURCE}, auth=(agent, secret)
    )
    return r.status_code, r.json(), dict(r.headers)


async def test_client_credentials_refused_when_agent_budget_spent(authz: AS) -> None:
    agent, secret = _agent(authz)
    budget = _budget(authz, "agent", agent, 2)
    assert (await _cc(authz, agent, secret))[0] == 200
    _spend(authz, budget, {"agent": agent}, 2)
    status, body, headers = await _cc(authz, agent, secret)
    assert status == 400
    assert body["error"] == "access_denied"
    assert str(body["error_description"]).startswith(f"budget {budget.id} exhausted until ")
    assert str(body["error_description"]).endswith("Z")
    assert 0 < int(headers["retry-after"]) <= 25 * 3600
    assert headers["cache-control"] == "no-store"
    refused = [e for e in _events(authz, "token.refused") if e.get("budget_id") == budget.id]
    assert len(refused) == 1
    assert refused[0]["reason"] == "budget_exhausted" and refused[0]["agent"] == agent


async def test_team_budget_refuses_every_agent_of_the_team(authz: AS) -> None:
    team = create_team(Agents.from_context(authz.ctx), name="t" + str(time.monotonic_ns()), actor="test")
    a1, s1 = _agent(authz, team.id)
    a2, s2 = _agent(authz, team.id)
    budget = _budget(authz, "team", team.id, 1)
    _spend(authz, budget, {"agent": a1, "team": team.id})
    assert (await _cc(authz, a1, s1))[0] == 400
    assert (await _cc(authz, a2, s2))[1]["error"] == "access_denied"


async def test_soft_budget_and_held_reservations_do_not_refuse(authz: AS) -> None:
    agent, secret = _agent(authz)
    soft = _budget(authz, "agent", agent, 1, hard=False)
    _spend(authz, soft, {"agent": agent}, 3)  # soft: over the limit, never refuses
    assert (await _cc(authz, agent, secret))[0] == 200
    agent2, secret2 = _agent(authz)
    _budget(authz, "agent", agent2, 1)
    svc = authz.ctx.budgets
    assert svc is not None
    held = svc.reserve_for_use({"agent": agent2}, Usage(calls=1))  # in flight, not spent
    assert isinstance(held, Reservation)
    assert (await _cc(authz, agent2, secret2))[0] == 200


async def test_lifetime_budget_has_no_retry_after(authz: AS) -> None:
    agent, secret = _agent(authz)
    budget = _budget(authz, "agent", agent, 1, period="lifetime")
    _spend(authz, budget, {"agent": agent})
    status, body, headers = await _cc(authz, agent, secret)
    assert status == 400 and body["error_description"] == f"budget {budget.id} exhausted (lifetime budget)"
    assert "retry-after" not in headers


async def test_token_exchange_refused_for_spent_workflow_budget(authz: AS) -> None:
    agent, secret = _agent(authz)
    budget = _budget(authz, "workflow", "wf-budget", 1)
    subject = await user_token(authz)
    data = {
        "grant_type": TE,
        "subject_token": subject,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "resource": RESOURCE,
        "workflow": "wf-budget",
    }
    r = await authz.http.post("/token", data=data, auth=(agent, secret))
    assert r.status_code == 200, r.text
    _spend(authz, budget, {"agent": agent, "workflow": "wf-budget"})
    r = await authz.http.post("/token", data=data, auth=(agent, secret))
    assert r.status_code == 400 and r.json()["error"] == "access_denied", r.text
    r = await authz.http.post("/token", data={**data, "workflow": "wf-other"}, auth=(agent, secret))
    assert r.status_code == 200, r.text  # another workflow is not covered by that budget
    assert [e["budget_id"] for e in _events(authz, "token.refused") if e["reason"] == "budget_exhausted"] == [budget.id]


async def test_ledger_unreachable_fails_closed_with_temporarily_unavailable(authz: AS) -> None:
    from authz.budgets.ledger import LedgerUnavailable

    agent, secret = _agent(authz)
    _budget(authz, "agent", agent, 5)
    svc = authz.ctx.budgets
    assert svc is not None

    def down(*_: object) -> object:
        raise LedgerUnavailable("down")

    original, spent = svc.ledger.status, svc.ledger.spent  # type: ignore[attr-defined]
    svc.ledger.status = svc.ledger.spent = down  # type: ignore[method-assign, assignment, attr-defined]
    try:
        status, body, _ = await _cc(authz, agent, secret)
    finally:
        svc.ledger.status, svc.ledger.spent = original, spent  # type: ignore[method-assign, attr-defined]
    assert status == 503 and body["error"] == "temporarily_unavailable"
    assert any(e["reason"] == "budget_unavailable" for e in _events(authz, "token.refused"))
