"""Billing in the console: customers, plans, invoice previews and invoices render from the billing
service; the admin's actions (create a customer, assign an agent, subscribe, grant credit, close a
period) go through it and are audited with the person; a viewer or an operator changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from authz.billing.examples import SHAPES
from authz.billing.service import BillingService
from authz.identity.agents.lifecycle import Agents, create_agent
from tests.authz.billing.conftest import month_start, sample_month
from tests.authz.console.conftest import Console, ConsoleFactory

pytestmark = pytest.mark.anyio
CUSTOMER = "acme"


def _svc(c: Console) -> BillingService:
    svc = c.authz.ctx.billing
    assert svc is not None
    return svc


def seed(c: Console, customer: str = CUSTOMER, prefix: str = "p") -> list[str]:
    """The hybrid plan, a USD customer with three agents subscribed since the month began, and the
    sample month's usage (231.80 USD)."""
    ctx, svc = c.authz.ctx, _svc(c)
    if not svc.store.plans():
        svc.store.create_plan("hybrid", "Hybrid", SHAPES["hybrid"])
    deps = Agents.from_context(ctx)
    agents = [create_agent(deps, name=f"{prefix}-bill-{i}", actor="test").id for i in range(3)]
    svc.create_customer(id=customer, name=f"{customer.title()} Inc", currency="USD")
    for a in agents:
        svc.assign(customer, "agent", a)
    svc.store.subscribe(customer, "hybrid", int(month_start().timestamp()))
    assert ctx.metering is not None
    ctx.metering.ingest(sample_month(agents, None, prefix))
    ctx.metering.flush()
    return agents


def _events(c: Console, prefix: str) -> list[Any]:
    c.authz.ctx.audit.flush()
    return [e for e in c.authz.ctx.store.list_audit(0, 1000) if e.event.startswith(prefix)]


async def test_billing_pages_render_for_a_viewer(console_for: ConsoleFactory) -> None:
    c = await console_for("victor")
    agents = seed(c)
    r = await c.get("/billing")
    assert r.status_code == 200 and "Acme Inc" in r.text and 'href="/console/billing"' in r.text
    r = await c.get(f"/billing/customers/{CUSTOMER}")
    assert r.status_code == 200 and "hybrid@1" in r.text and "p-bill-0" in r.text
    assert "needs the admin role" in r.text and 'action="/console/billing/customers/acme/credits"' not in r.text
    stray = sample_month(["agt_unregistered"] * 3, CUSTOMER, "stray")[:1]  # an event naming no registered agent
    assert c.authz.ctx.metering is not None
    c.authz.ctx.metering.ingest(stray)
    c.authz.ctx.metering.flush()
    r = await c.get(f"/billing/customers/{CUSTOMER}/preview")
    assert r.status_code == 200, r.text[:500]
    assert "231.80" in r.text and "199.00" in r.text and "Meetings booked" in r.text
    assert agents[2] in r.text and "Margin" in r.text and "As of" in r.text
    assert "<code>agt_unregistered</code> <small>(not a registered agent)</small>" in r.text
    assert 'href="/console/agents/agt_unregistered"' not in r.text and 'href="/console/agents/' + agents[2] in r.text
    r = await c.get("/billing/plans")
    assert r.status_code == 200 and "hybrid@1" in r.text
    r = await c.get("/billing/plans/hybrid@1")
    assert r.status_code == 200
    assert "Tokens above 10M per agent" in r.text and "above 10" in r.text and "0.40 USD" in r.text
    assert "tokens of tokens.consumed events" in r.text and "priced per agent" in r.text
    r = await c.get("/billing/invoices")
    assert r.status_code == 200 and "No finalized invoice" in r.text
    r = await c.get(f"/billing/customers/{CUSTOMER}/close")
    assert r.status_code == 200 and "does not allow this" in r.text and "231.80" in r.text
    for path in ("/billing/customers/nope", "/billing/plans/nope@9", "/billing/invoices/in_nope",
                 "/billing/invoices/in_nope/csv", "/billing/customers/nope/preview"):  # fmt: skip
        r = await c.get(path)
        assert r.status_code == 404, path


async def test_admin_actions_go_through_billing_and_are_audited(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    agents = seed(c)
    svc = _svc(c)
    r = await c.post("/billing/customers", {"id": "globex", "name": "Globex", "currency": "usd", "timezone": ""})
    assert r.status_code == 303 and r.headers["location"].endswith("/billing/customers/globex?done=customer+created")
    assert svc.store.customer("globex").currency == "USD"
    r = await c.post("/billing/customers/globex/members", {"subject_type": "agent", "subject_id": agents[0]})
    assert r.status_code == 303 and svc.store.members("globex") == [("agent", agents[0])]
    r = await c.post("/billing/customers/globex/subscriptions", {"plan": "hybrid@1", "starts_on": ""})
    assert r.status_code == 303 and len(svc.store.subscriptions("globex")) == 1
    r = await c.post(f"/billing/customers/{CUSTOMER}/credits", {"amount": "31.80", "category": "promotional"})
    assert r.status_code == 303
    assert [rem for _c, rem in svc.credit_balances(CUSTOMER)] == [3180]
    r = await c.get(f"/billing/customers/{CUSTOMER}")
    assert "31.80 USD" in r.text and "promotional" in r.text
    r = await c.get(f"/billing/customers/{CUSTOMER}/preview")
    assert "\N{MINUS SIGN}31.80" in r.text and ">200.00<" in r.text.replace("<strong>", "").replace("</strong>", "")

    r = await c.post(f"/billing/customers/{CUSTOMER}/close", {"at": ""})  # the period is still open
    assert r.status_code == 409 and svc.invoices() == []
    r = await c.post(f"/billing/customers/{CUSTOMER}/close", {"at": "", "force": "1"})
    assert r.status_code == 303, r.text[:500]
    [doc] = svc.invoices()
    assert r.headers["location"].endswith(f"/billing/invoices/{doc['id']}?done=invoice+{doc['number']}+finalized")
    assert doc["total"] == "200.00"
    r = await c.get(f"/billing/invoices/{doc['id']}")
    assert r.status_code == 200 and doc["number"] in r.text and "finalized" in r.text
    r = await c.get(f"/billing/invoices/{doc['id']}/csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="{doc["number"]}.csv"'
    assert r.text.startswith("invoice,number,customer") and "200.00" in r.text
    r = await c.get("/billing/invoices?customer=acme")
    assert doc["number"] in r.text

    actors = {e.event: e.detail.get("actor") for e in _events(c, "")}
    for event in ("customer.created", "customer.member_added", "subscription.created", "credit.granted",
                  "invoice.finalized"):  # fmt: skip
        assert actors.get(event) == "console:alice", event


async def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    seed(c)
    svc = _svc(c)
    r = await c.post("/billing/customers", {"id": "x", "name": "X", "currency": "DOLLARS"})
    assert r.status_code == 422 and "currency" in r.text and "x" not in svc.store.customer_ids()
    r = await c.post("/billing/customers", {"id": CUSTOMER, "name": "Again", "currency": "USD"})
    assert r.status_code == 409
    r = await c.post(f"/billing/customers/{CUSTOMER}/members", {"subject_type": "agent", "subject_id": "agt_nope"})
    assert r.status_code == 422 and "no agent &#39;agt_nope&#39; (agent_id)" in r.text  # the API's and the CLI's error
    r = await c.post(f"/billing/customers/{CUSTOMER}/credits", {"amount": "-5"})
    assert r.status_code == 422 and "amount" in r.text and svc.credit_balances(CUSTOMER) == []
    r = await c.post(f"/billing/customers/{CUSTOMER}/credits", {"amount": "5", "expires_on": "tomorrow"})
    assert r.status_code == 422 and "expires_on" in r.text
    r = await c.get(f"/billing/customers/{CUSTOMER}/preview?at=2099-13-01")
    assert r.status_code == 422
    r = await c.post("/billing/customers/nope/close", {"at": "", "force": "1"})
    assert r.status_code == 404 and svc.invoices() == []


ACTIONS = [
    ("/billing/customers", {"id": "initech", "name": "Initech", "currency": "USD"}),
    (f"/billing/customers/{CUSTOMER}/members", {"subject_type": "team", "subject_id": "nobody"}),
    (f"/billing/customers/{CUSTOMER}/subscriptions", {"plan": "hybrid@1"}),
    (f"/billing/customers/{CUSTOMER}/credits", {"amount": "10.00"}),
    (f"/billing/customers/{CUSTOMER}/close", {"at": "", "force": "1"}),
]


@pytest.mark.parametrize("user", ["victor", "olga"])
@pytest.mark.parametrize(("path", "form"), ACTIONS, ids=["create", "assign", "subscribe", "grant", "close"])
async def test_viewer_and_operator_cannot_change_billing(
    console_for: ConsoleFactory, user: str, path: str, form: dict[str, str]
) -> None:
    c = await console_for(user)
    seed(c)
    svc = _svc(c)

    def state() -> Any:
        return (sorted(svc.store.customer_ids()), svc.store.members(CUSTOMER), len(svc.store.subscriptions(CUSTOMER)),
                svc.credit_balances(CUSTOMER), svc.invoices())  # fmt: skip

    before = state()
    r = await c.post(path, form)
    assert r.status_code == 403 and "Not allowed" in r.text
    assert state() == before
    assert _events(c, "customer.") == _events(c, "credit.") == _events(c, "invoice.") == []
