"""Billing customers: the list (cursor pages), one customer (members, subscriptions and the current
plan version, credits with their remaining balances, recent invoices), and the admin actions the
admin API also has: create a customer, bill an agent or a team to it, subscribe it to a plan, grant
credit. Every action calls :class:`authz.billing.BillingService` (what ``/api/v1`` and the CLI
call), which validates it and audits it with the person (``actor=console:<username>``); a viewer
or an operator changes nothing (403)."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from authz.billing.errors import BillingError
from authz.billing.money import from_minor, text
from authz.console import queries
from authz.console.billing_common import day_instant, guarded, service
from authz.console.web import Viewer, ctx_of, handler, redirect, render
from authz.context import Context
from authz.identity.console_roles import WRITE
from authz.storage.models import Agent

PAGE = 50
MEMBERS = 100
INVOICES = 10


@handler()
@guarded
async def customer_list(request: Request, viewer: Viewer) -> Response:
    svc = service(ctx_of(request))
    after = request.query_params.get("after", "")[:255]
    rows = await anyio.to_thread.run_sync(lambda: svc.customer_page(after, PAGE + 1))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(request, "customers.html", {
        "me": viewer, "title": "Customers", "nav": "billing", "sub": "customers", "customers": rows,
        "next": rows[-1].id if more and rows else "", "may_write": viewer.may(WRITE),
        "done": request.query_params.get("done"),
    })  # fmt: skip


def agent_names(ctx: Context, ids: list[str]) -> dict[str, str]:
    """Names of these agents (one bounded read)."""
    if not ids:
        return {}
    with queries.engine_of(ctx).connect() as conn:
        return dict(conn.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids[:MEMBERS]))).all())


def load_customer(ctx: Context, customer_id: str) -> dict[str, Any]:
    svc = service(ctx)
    customer = svc.store.customer(customer_id)
    members = svc.store.members(customer_id)
    subs = svc.store.subscriptions(customer_id)
    now = int(time.time())
    current = next((s for s in subs if s.starts_at <= now and (s.ends_at is None or now < s.ends_at)), None)
    version = svc.store.version(current.plan_version_id) if current else None
    period = svc.period(customer, current, version, now) if current and version else None
    grants = svc.credit_balances(customer_id)
    credits = [
        {"row": c, "amount": text(from_minor(c.amount_minor, c.currency), c.currency),
         "remaining": text(from_minor(rem, c.currency), c.currency)}
        for c, rem in grants
    ]  # fmt: skip
    balance = sum(rem for c, rem in grants if c.effective_at <= now and (not c.expires_at or c.expires_at > now))
    names = agent_names(ctx, [i for t, i in members if t == "agent"])
    return {
        "customer": customer, "members": members[:MEMBERS], "more_members": max(0, len(members) - MEMBERS),
        "names": names, "subscriptions": subs, "current": current, "version": version, "period": period,
        "credits": credits, "balance": text(from_minor(balance, customer.currency), customer.currency),
        "invoices": svc.recent_invoices(customer_id, INVOICES),
        "plans": [v.id for _p, vs in svc.store.plans() for v in vs],
    }  # fmt: skip


@handler()
@guarded
async def customer_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    data = await anyio.to_thread.run_sync(load_customer, ctx, request.path_params["customer_id"])
    return render(request, "customer.html", {
        "me": viewer, "title": data["customer"].name, "nav": "billing", "sub": "customers", **data,
        "may_write": viewer.may(WRITE), "done": request.query_params.get("done"),
    })  # fmt: skip


def _form_text(form: Any, name: str, limit: int = 255) -> str:
    return str(form.get(name, "")).strip()[:limit]


@handler(WRITE)
@guarded
async def create(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    svc, form = service(ctx), await request.form()
    fields = {k: _form_text(form, k) for k in ("id", "name", "currency", "timezone", "email")}
    fields["currency"] = fields["currency"].upper()
    fields["timezone"] = fields["timezone"] or "UTC"

    def run() -> None:
        svc.create_customer(actor=viewer.actor, **fields)

    await anyio.to_thread.run_sync(run)
    return redirect(request, f"/billing/customers/{fields['id']}?done=customer+created")


@handler(WRITE)
@guarded
async def add_member(request: Request, viewer: Viewer) -> Response:
    """Bill an agent's (or a team's agents') future events to the customer."""
    customer_id = request.path_params["customer_id"]
    svc, form = service(ctx_of(request)), await request.form()
    kind, subject = _form_text(form, "subject_type") or "agent", _form_text(form, "subject_id")

    await anyio.to_thread.run_sync(lambda: svc.assign(customer_id, kind, subject, actor=viewer.actor))
    return redirect(request, f"/billing/customers/{customer_id}?done={kind}+assigned")


@handler(WRITE)
@guarded
async def subscribe(request: Request, viewer: Viewer) -> Response:
    ctx, customer_id = ctx_of(request), request.path_params["customer_id"]
    svc, form = service(ctx), await request.form()
    plan = _form_text(form, "plan")

    def run() -> None:
        customer = svc.store.customer(customer_id)
        starts = day_instant(_form_text(form, "starts_on"), customer.timezone, "starts_on", noon=False)
        svc.subscribe(customer_id, plan, starts, actor=viewer.actor)

    await anyio.to_thread.run_sync(run)
    return redirect(request, f"/billing/customers/{customer_id}?done=subscribed")


@handler(WRITE)
@guarded
async def grant(request: Request, viewer: Viewer) -> Response:
    ctx, customer_id = ctx_of(request), request.path_params["customer_id"]
    svc, form = service(ctx), await request.form()
    priority = _form_text(form, "priority") or "50"

    def run() -> None:
        customer = svc.store.customer(customer_id)
        if not priority.isdigit():
            raise BillingError("must be an integer from 0 to 100", "priority")
        svc.grant(
            customer_id, _form_text(form, "amount", 40), actor=viewer.actor,
            category=_form_text(form, "category") or "prepaid",
            priority=int(priority), expires_at=day_instant(_form_text(form, "expires_on"), customer.timezone,
                                                           "expires_on", noon=False),
            description=_form_text(form, "description"),
        )  # fmt: skip

    await anyio.to_thread.run_sync(run)
    return redirect(request, f"/billing/customers/{customer_id}?done=credit+granted")
