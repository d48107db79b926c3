"""No console page issues more SQL statements when the data grows: each page is rendered over a small
and a larger data set and the statements it executed (only those of the request itself: a context
variable marks them, background workers are not counted) must be the same number, under a bound."""

from __future__ import annotations

import contextvars
import time
from typing import Any

import pytest
from sqlalchemy import event

from authz.billing.examples import SHAPES
from authz.console.budgets import PAGE as BUDGET_PAGE
from authz.console.customers import PAGE as CUSTOMER_PAGE
from authz.identity.agents import credentials as creds
from authz.identity.agents.lifecycle import Agents, create_agent, create_team
from tests.authz.billing.conftest import month_start
from tests.authz.console.conftest import Console, ConsoleFactory
from tests.authz.metering.conftest import event as usage_event
from tests.authz.metering.conftest import tokens

pytestmark = pytest.mark.anyio
COUNTING: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("console_sql", default=None)
BOUND = 12 + BUDGET_PAGE  # the budgets page reads one ledger status per budget shown (at most 25)


def _grow(c: Console, n: int, tag: str) -> list[str]:
    """n agents (with credentials), budgets beyond one page, n*10 usage events, n*5 audit records."""
    ctx = c.authz.ctx
    deps = Agents.from_context(ctx)
    team = create_team(deps, name=f"team-{tag}", actor="test")
    ids = []
    for i in range(n):
        agent = create_agent(deps, name=f"bot-{tag}-{i}", team=team.id, actor="test")
        creds.issue_credential(deps, agent.id, kind="secret", actor="test")
        ids.append(agent.id)
    assert ctx.budgets is not None and ctx.metering is not None
    for i in range(BUDGET_PAGE + 2):
        ctx.budgets.store.create("agent", ids[i % len(ids)], metric="calls", limit=100 + i, period="day")
    now_ms = int(time.time() * 1000)
    events: list[dict[str, Any]] = []
    for i in range(n * 10):
        ts = now_ms - (i % 48) * 3_600_000
        agent = ids[i % n]
        events.append(tokens(f"{tag}-t{i}", ts, agent=agent) if i % 2 else usage_event(f"{tag}-c{i}", ts, agent=agent))
    ctx.metering.ingest(events)
    ctx.metering.flush()
    for i in range(n * 5):
        ctx.audit.record("token.issued", client_id=ids[i % n], jti=f"j{tag}{i}")
    ctx.audit.flush()
    _bill(c, n, tag, ids)
    return ids


def _bill(c: Console, n: int, tag: str, agents: list[str]) -> None:
    """Customers (more than a page in the larger set), each with a finalized invoice; the first
    with every agent of the set and n credit grants."""
    svc = c.authz.ctx.billing
    assert svc is not None
    if not svc.store.plans():
        svc.store.create_plan("hybrid", "Hybrid", SHAPES["hybrid"])
    start = int(month_start().timestamp())
    for i in range(n if n < 10 else CUSTOMER_PAGE + 1):
        customer = f"cust-{tag}-{i:03d}"
        svc.create_customer(id=customer, name=f"Customer {tag} {i}", currency="USD")
        svc.store.subscribe(customer, "hybrid", start)
        for a in agents if i == 0 else []:
            svc.assign(customer, "agent", a)
        for j in range(n if i == 0 else 1):
            svc.store.grant(customer, "5.00", description=f"grant {j}")
        svc.close(customer, int(time.time()), force=True)


async def _count(c: Console, path: str) -> int:
    engine = c.authz.ctx.store.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        bucket = COUNTING.get()
        if bucket is not None:
            bucket.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    token = COUNTING.set(seen)
    try:
        r = await c.get(path)
    finally:
        COUNTING.reset(token)
        event.remove(engine, "before_cursor_execute", on_execute)
    assert r.status_code == 200, (path, r.text[:300])
    return len(seen)


async def test_queries_per_page_do_not_grow_with_data(console_for: ConsoleFactory) -> None:
    c = await console_for("alice")
    small = _grow(c, 3, "s")
    pages = ["/", "/agents", "/agents/{agent}", "/servers", "/policies", "/budgets", "/usage",
             "/usage?by=model&metric=cost&range=90d", "/audit", "/audit?event=token.", "/licenses",
             *BILLING]  # fmt: skip
    before = {p: await _count(c, _path(c, p, small[0], "s")) for p in pages}
    big = _grow(c, 40, "b")
    after = {p: await _count(c, _path(c, p, big[0], "b")) for p in pages}
    assert list(after.values()) == list(before.values()), (before, after)
    assert max(after.values()) <= BOUND, after


BILLING = ["/billing", "/billing/customers/{customer}", "/billing/customers/{customer}/preview",
           "/billing/customers/{customer}/close", "/billing/plans", "/billing/plans/hybrid@1", "/billing/invoices",
           "/billing/invoices/{invoice}", "/billing/invoices/{invoice}/csv"]  # fmt: skip


def _path(c: Console, page: str, agent: str, tag: str) -> str:
    """The page for this data set: its first agent, its first customer and that customer's invoice."""
    svc = c.authz.ctx.billing
    assert svc is not None
    customer = f"cust-{tag}-000"
    invoice = svc.recent_invoices(customer, 1)[0]["id"]
    return page.format(agent=agent, customer=customer, invoice=invoice)
