"""One scenario per area of the admin API, each calling every SDK method of its area on a live server.

``test_sdk_surface`` runs them all with a client that records which SDK methods and which operations
were called, and fails when one of either was not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_client.sdk import ApiError, Client, RetryPolicy, verify_offline
from agent_client.sdk import models as m
from policies.loader import read_sources
from tests.agent_client.conftest import RESOURCE

ROOT = Path(__file__).resolve().parents[2]
PLAN = {
    "currency": "USD", "interval": "month", "anchor": "calendar", "grace_hours": 0,
    "components": [
        {"id": "base", "label": "Platform", "kind": "flat", "amount": "10.00"},
        {"id": "tickets", "kind": "unit", "unit_amount": "0.50",
         "quantity": {"source": "meter", "event_type": "outcome.ticket_resolved", "field": "quantity"}},
    ],
}  # fmt: skip


def _uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def agents_and_teams(c: Client, user_id: str) -> None:
    team = c.teams.create(_uid("team-"), description="sdk")
    assert m.Team.of(c.teams.get(team["id"])).name == team["name"]
    assert team["id"] in [t["id"] for t in c.teams.list()["items"]]
    agent = c.agents.create("surface agent", team=team["name"], tags=["surface"])
    aid = m.Agent.of(agent).id
    assert c.agents.get(aid)["id"] == aid
    assert aid in [a.id for a in m.AgentPage.of(c.agents.list(team=team["name"])).items]
    assert c.agents.update(aid, description="changed")["description"] == "changed"
    assert c.agents.suspend(aid)["status"] == "suspended"
    assert c.agents.reinstate(aid)["status"] == "active"
    cred = c.agents.credentials.issue(aid)
    assert m.Credential.of(cred).secret
    assert [x["id"] for x in c.agents.credentials.list(aid)["items"]] == [cred["id"]]
    rotated = c.agents.credentials.rotate(aid, cred["id"], overlap_seconds=0)
    assert m.Rotated.of(rotated).old.id == cred["id"]
    assert c.agents.credentials.revoke(aid, rotated["new"]["id"])["id"] == rotated["new"]["id"]
    assert c.agents.revoke(aid)["status"] == "revoked"


def budgets(c: Client, user_id: str) -> None:
    agent = c.agents.create("budgeted")["id"]
    team = c.teams.create(_uid("bteam-"))["id"]
    workflow = _uid("wf-")
    one = c.budgets.create(agent=agent, call_limit=1, period="month", hard_cap=True)
    c.budgets.create(team=team, token_limit=1000)
    c.budgets.create(workflow=workflow, cost_limit_micros=5_000_000, currency="USD")
    assert [b["id"] for b in c.budgets.list(agent=agent)["items"]] == [one["id"]]
    assert len(c.budgets.list(team=team)["items"]) == len(c.budgets.list(workflow=workflow)["items"]) == 1
    assert m.Budget.of(c.budgets.get(one["id"])).limit == 1
    assert c.budgets.update(one["id"], thresholds=[50, 100])["thresholds"] == [50, 100]
    hook = c.budgets.add_webhook(one["id"], "https://hooks.example.com/budget")
    assert hook["secret"]
    held = c.budgets.reserve(agent=agent, calls=1)
    assert m.Reservation.of(held).reservation_id and one["id"] in held["budgets"]
    assert m.BudgetStatus.of(c.budgets.status(one["id"])).reserved == 1
    # the hard cap is reached: 429 with a Retry-After far beyond max_delay, so no retry is attempted
    with pytest.raises(ApiError) as err:
        c.budgets.reserve(agent=agent, calls=1)
    assert err.value.status == 429 and (err.value.retry_after or 0) > c.retry.max_delay
    settled = c.budgets.settle([{"reservation_id": held["reservation_id"], "actual": {"calls": 1}}])
    assert settled["results"][0]["reservation_id"] == held["reservation_id"]
    assert c.budgets.status(one["id"])["spent"] == 1
    assert c.budgets.delete(one["id"])


def metering(c: Client, user_id: str) -> None:
    agent = _uid("agt_m")
    usage = {"input_tokens": 10, "output_tokens": 5}
    out = c.metering.record(
        "tokens.consumed", agent=agent, provider="anthropic", model="claude-3-5-sonnet", usage=usage
    )
    assert (m.Ingested.of(out).accepted, out["rejected"]) == (1, [])
    assert c.metering.record_batch([{"type": "call.completed", "agent": agent}] * 3)["accepted"] == 3
    assert c.outcomes.record("ticket_resolved", agent=agent, quantity=2)["accepted"] == 1
    assert m.Usage.of(c.metering.usage(granularity="day", group_by="type", filters={"agent": agent})).group_by


def policies_and_subjects(c: Client, user_id: str) -> None:
    base = {"base.cedar": (ROOT / "policies" / "base.cedar").read_text()}
    put = c.policies.put(base, comment="surface")
    assert c.policies.get()["version"] == put["version"]
    assert put["version"] in [v["version"] for v in c.policies.versions()["items"]]
    assert c.policies.version(put["version"])["comment"] == "surface"
    active = m.PolicyTestReport.of(c.policies.test())  # the shipped tests: base.cedar alone permits nothing
    assert (active.target, active.version, active.sha256) == ("active", put["version"], put["sha256"])
    assert active.failed > 0 and not active.ok and all(r.expected == "DENY" for r in active.results if r.passed)
    shipped = {"ALLOW/client_on_demo.json": (ROOT / "policies/tests/ALLOW/client_on_demo.json").read_text()}
    draft = m.PolicyTestReport.of(c.policies.test(shipped, sources=read_sources(ROOT / "policies")[1]))
    assert draft.ok and draft.target == "draft" and draft.results[0].policies[0].file == "servers/demo.cedar"
    with pytest.raises(ApiError) as bad:
        c.policies.test({"ALLOW/broken.json": "{"})
    assert bad.value.status == 422 and bad.value.fields == ["tests[ALLOW/broken.json]"]
    assert c.subjects.export(user_id)["subject"] == user_id
    assert c.subjects.erase(user_id, reason="sdk test")["subject"] == user_id


def billing(c: Client, user_id: str) -> None:
    agent = c.agents.create("billed")["id"]
    team = c.teams.create(_uid("cteam-"))["id"]
    cid = _uid("cus_")
    assert m.Customer.of(c.customers.create(cid, "Acme", "USD", agents=[agent])).id == cid
    assert cid in [x["id"] for x in c.customers.list()["items"]]
    assert c.customers.add_member(cid, team=team)["id"] == cid
    assert {m.get("id") or m.get("team_id") or m.get("agent_id") for m in c.customers.get(cid)["members"]}
    pid = _uid("plan-")
    assert c.plans.create(pid, "Plan", PLAN)["id"] == pid
    assert c.plans.add_version(pid, PLAN)["version"] == 2
    assert len(c.plans.get(pid)["versions"]) == 2
    assert pid in [p["id"] for p in c.plans.list()["items"]]
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    sub = c.subscriptions.create(cid, f"{pid}@1", starts_at=start)
    assert m.Subscription.of(sub).customer_id == cid
    assert [s["id"] for s in c.subscriptions.list(customer=cid)["items"]] == [sub["id"]]
    assert m.Credit.of(c.credits.grant(cid, "5.00", description="welcome")).amount == "5.00"
    assert len(c.credits.list(customer=cid)["items"]) == 1
    c.outcomes.record("ticket_resolved", agent=agent, quantity=4)
    assert m.Invoice.of(c.invoices.preview(cid)).customer_id == cid
    assert c.customers.value_receipt(cid)["receipt"]
    closed = c.invoices.close(cid, datetime.now(UTC), force=True)
    invoice_id = closed["invoice"]["id"]
    assert m.Invoice.of(c.invoices.get(invoice_id)).total
    assert c.invoices.get(invoice_id)["id"] == invoice_id
    assert "text/csv" in c.invoices.csv(invoice_id)["content_type"]
    assert invoice_id in [i["id"] for i in c.invoices.list(customer=cid)["items"]]
    hook = c.webhooks.billing.add("https://hooks.example.com/billing", description="sdk")
    assert hook["id"] in [h["id"] for h in c.webhooks.billing.list()["items"]]
    assert c.webhooks.billing.delete(hook["id"])["deleted"] is True


def licensing(c: Client, user_id: str) -> None:
    product = c.products.create(_uid("p"), "Product")
    assert product["id"] in [p["id"] for p in c.products.list()["items"]]
    policy = c.license_policies.create(product["code"], "pro", entitlements=["export"], max_machines=2)
    assert policy["id"] in [p["id"] for p in c.license_policies.list(product=product["code"])["items"]]
    lic = c.licenses.create(policy["id"], name="sdk license")
    key, lid = m.License.of(lic).key, lic["id"]
    assert key
    assert lid in [x["id"] for x in c.licenses.list(product=product["code"])["items"]]
    assert m.Signed.of(c.licenses.validate(key, product=product["code"])).meta["code"] == "VALID"
    machine = c.licenses.activate(key, "fp-sdk-1", name="laptop")["data"]
    assert c.licenses.heartbeat(key, machine["id"])["data"]["id"] == machine["id"]
    assert c.licenses.me(key)["data"]["id"] == lid
    assert c.licenses.get(lid)["id"] == lid
    assert machine["id"] in [m["id"] for m in c.machines.list(license_id=lid)["items"]]
    assert m.Machine.of(c.machines.get(machine["id"])).id == machine["id"]
    jwks = c.licenses.jwks()
    own = c.licenses.checkout(key=key)["data"]["certificate"]
    assert verify_offline(own, jwks, key=key).license["id"] == lid
    by_admin = c.licenses.checkout(lid)["certificate"]
    assert verify_offline(by_admin, jwks, key=key).entitlements == ["export"]
    assert c.licenses.deactivate(key, machine["id"])["data"]["deactivated"] is True
    second = c.licenses.activate(key, "fp-sdk-2")["data"]
    assert c.machines.deactivate(second["id"])["deactivated"] is True
    agent = c.agents.create("licensed")["id"]
    assert c.licenses.attach_agent(lid, agent)["agent_id"] == agent
    assert c.licenses.suspend(lid)["status"] == "suspended"
    assert c.licenses.reinstate(lid)["status"] == "active"
    assert c.licenses.revoke(lid, reason="done")["status"] == "revoked"
    hook = c.webhooks.licensing.add("https://hooks.example.com/licensing")
    assert hook["id"] in [h["id"] for h in c.webhooks.licensing.list()["items"]]
    assert c.webhooks.licensing.delete(hook["id"])["id"] == hook["id"]


def oversight(c: Client, user_id: str) -> None:
    agent = c.agents.create("overseen")["id"]
    record = c.agents.ai_act.put(agent, risk="limited", intended_purpose="support", provider="Acme", deployer="Acme")
    assert record["risk"] == "limited" and c.agents.ai_act.get(agent)["provider"] == "Acme"
    rule = c.oversight.add_rule(RESOURCE, "refund", ttl=600)
    assert rule["id"] in [r["id"] for r in c.oversight.rules(resource=RESOURCE)["rules"]]
    assert "refund" in c.oversight.gated(RESOURCE)["tools"]
    asked = c.oversight.check(agent, RESOURCE, "refund", {"amount": 10})
    assert asked["decision"] == "approval_required" and asked["approval_id"]
    assert asked["approval_id"] in [a["id"] for a in c.oversight.approvals(status="pending")["approvals"]]
    assert c.oversight.decide(asked["approval_id"], "approve", reason="ok")["status"] == "approved"
    assert c.oversight.check(agent, RESOURCE, "refund", {"amount": 10})["decision"] == "allow"
    assert c.oversight.delete_rule(rule["id"])["deleted"] == rule["id"]


def incidents(c: Client, user_id: str) -> None:
    agent = c.agents.create(_uid("incident-agent"))["id"]
    opened = c.incidents.open("wrong refunds", kind="death", agents=[agent], description="d")
    assert opened["reporting_days"] == 10 and opened["status"] == "open"
    assert opened["id"] in [i["id"] for i in c.incidents.list(status="open")["incidents"]]
    assert c.incidents.get(opened["id"])["agents"] == [agent]
    reported = c.incidents.update(opened["id"], reported_at=opened["aware_at"] + 60)
    assert reported["seconds_left"] is None
    assert c.incidents.close(opened["id"], resolution="fixed")["status"] == "closed"


SCENARIOS: list[Callable[[Client, str], None]] = [
    agents_and_teams, budgets, metering, policies_and_subjects, billing, licensing, oversight, incidents,
]  # fmt: skip
NO_RETRY = RetryPolicy(attempts=1)
