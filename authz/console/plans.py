"""Billing plans: every plan with its versions, and one version's pricing components in words
(what is counted, how it is priced, tiers as a table, allowances, bounds), read through
:class:`authz.billing.BillingService`. Versions are immutable, so this page only reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.billing.components import Component
from authz.billing.errors import BillingError
from authz.billing.money import plain, text
from authz.console.billing_common import service
from authz.console.web import Viewer, ctx_of, fail, handler, render

SEAT_POLICY = {
    "max_active": "the most agents active at once in the period",
    "prorated_days": "agents x active days / days",
}


def _n(d: Decimal) -> str:
    whole, _, frac = plain(d).partition(".")
    sign = "-" if whole.startswith("-") else ""
    return sign + f"{int(whole.lstrip('-')):,}" + ("." + frac if frac else "")


def money(d: Decimal, currency: str) -> str:
    """An amount with at least the currency's digits (``0.40 USD``), more when the price has them."""
    exact = text(d, currency)
    return f"{exact if Decimal(exact) == d else plain(d)} {currency}"


def counted(c: Component) -> str:
    """What the component counts, in words."""
    q = c.quantity
    if q.source == "fixed":
        return "a fixed fee" if q.count == 1 else f"a fixed {_n(q.count)} units"
    if q.source == "seats":
        return "seats: " + SEAT_POLICY.get(q.policy, q.policy)
    what = f"{q.field.replace('_', ' ')} of {q.event_type} events"
    for dim, values in q.filter:
        what += f", {dim} in {', '.join(values)}"
    return what


def priced(c: Component, currency: str) -> str:
    """How the counted quantity is priced, in words (tiers are shown as a table beside it)."""
    unit = "unit" if c.unit_scale == 1 else f"{_n(c.unit_scale)} units"
    if c.kind == "flat":
        return money(c.amount, currency) + ("" if c.quantity.source == "fixed" else " each")
    if c.kind == "unit":
        return f"{money(c.unit_amount, currency)} per {unit}"
    if c.kind == "package":
        free = f", the first {_n(c.free_units)} free" if c.free_units else ""
        return f"{money(c.package_amount, currency)} per started package of {_n(c.package_size)} {unit}s{free}"
    how = (
        "each tier prices the units inside it"
        if c.kind == "graduated"
        else "the tier holding the whole quantity prices all of it"
    )
    return f"{c.kind} tiers per {unit} ({how})"


def tiers(c: Component, currency: str) -> list[dict[str, str]]:
    rows = []
    lo = Decimal(0)
    for t in c.tiers:
        rows.append({
            "range": f"{_n(lo)} to {_n(t.up_to)}" if t.up_to is not None else f"above {_n(lo)}",
            "unit": money(t.unit_amount, currency) + (" (free)" if t.unit_amount == 0 and t.flat_amount == 0 else ""),
            "flat": money(t.flat_amount, currency) if t.flat_amount else "—",
        })  # fmt: skip
        lo = t.up_to if t.up_to is not None else lo
    return rows


def notes(c: Component, currency: str) -> list[str]:
    out = []
    if c.group_by == "agent":
        out.append(
            "priced per agent"
            + (", allowances pooled across the customer's agents" if c.allowance_scope == "pooled" else "")
        )
    if c.unit_scale != 1:
        out.append(f"quantity divided by {_n(c.unit_scale)}, rounding {c.rounding}")
    if c.min_amount is not None:
        out.append("at least " + money(c.min_amount, currency))
    if c.max_amount is not None:
        out.append("at most " + money(c.max_amount, currency))
    return out


def describe(c: Component, currency: str) -> dict[str, Any]:
    return {"c": c, "counted": counted(c), "priced": priced(c, currency), "tiers": tiers(c, currency),
            "notes": notes(c, currency)}  # fmt: skip


@handler()
async def plans_page(request: Request, viewer: Viewer) -> Response:
    svc = service(ctx_of(request))
    plans = await anyio.to_thread.run_sync(svc.store.plans)
    return render(request, "plans.html", {"me": viewer, "title": "Plans", "nav": "billing", "sub": "plans",
                                          "plans": plans})  # fmt: skip


@handler()
async def version_page(request: Request, viewer: Viewer) -> Response:
    svc = service(ctx_of(request))
    try:
        v = await anyio.to_thread.run_sync(svc.store.version, request.path_params["version_id"])
    except BillingError:
        return fail(request, viewer, "Not found", "No such plan version.", 404)
    spec = v.spec
    return render(request, "plan.html", {
        "me": viewer, "title": f"Plan {v.id}", "nav": "billing", "sub": "plans", "v": v, "spec": spec,
        "components": [describe(c, spec.currency) for c in spec.components],
    })  # fmt: skip
