"""The invoice preview: a pure, side-effect-free function of (plan version, rollups, credits, period).

:func:`preview` takes the usage already summed from the metering rollups (:class:`Usage`, built by
:mod:`authz.billing.usage`), never raw events, and returns the invoice document: one line per
component with its groups, quantities, free units, tiers and amounts; ``subtotal`` (the sum of the
rounded lines); credits applied in burn order; ``total``; ``as_of`` (the newest flushed event);
``final_after`` (period end + grace); the model cost and margin behind each line, per agent and per
workflow. Same inputs, same document, same ETag (a digest of the document).

Rounding: each line's precise amount (Decimal, after min/max) is rounded once, half away from
zero, to the currency's exponent; the subtotal is the sum of rounded lines; credits burn whole
minor units. Burn order of credits: ``priority`` ascending, then the earliest ``expires_at`` (none
last), then promotional before prepaid, then the oldest grant, then id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from authz.billing.components import FILTER_DIMS, ZERO, Component, price, scale
from authz.billing.components import bound as bound_amount
from authz.billing.money import from_minor, plain, round_money, text, to_minor
from authz.billing.outcomes import triggered
from authz.billing.periods import Period, iso
from authz.billing.plans import PlanSpec, canonical
from authz.billing.usage_rows import SUMS, Index, Table, Usage, UsageRow, sum_name

PICO = Decimal("1e12")
CUSTOMER = "*"


@dataclass(frozen=True, slots=True)
class CreditBalance:
    id: str
    category: str  # prepaid | promotional
    priority: int
    expires_at: int | None
    created_at: int
    remaining_minor: int


def burn_order(credits: Iterable[CreditBalance]) -> list[CreditBalance]:
    return sorted(
        credits,
        key=lambda c: (
            c.priority,
            c.expires_at is None,
            c.expires_at or 0,
            c.category != "promotional",
            c.created_at,
            c.id,
        ),
    )


def active_agents(usage: Usage, index: Index | None = None) -> list[str]:
    return sorted((index or Index(usage)).active)


def seats(usage: Usage, policy: str, period: Period, index: Index | None = None) -> Decimal:
    if policy == "prorated_days":
        days = sum(min(d, period.days) for d in usage.agent_days.values())
        return Decimal(days) / Decimal(period.days)
    return Decimal(len((index or Index(usage)).active))


def _meter(c: Component, index: Index) -> tuple[dict[str, int], int, int]:
    """A meter's summed field per group (integers: one Decimal per group, not one per row), and the
    model cost (pico-USD) and unpriced events of its rows; only the rows of its event type are read."""
    q = c.quantity
    sums: dict[str, int] = {}
    cost_pusd = unpriced = 0
    checks = index.filter_positions(q.filter)
    rows = index.by_type.get(q.event_type, ()) if checks is not None else ()
    at, cost_at, unpriced_at = index.sum_at[sum_name(q.field)], index.sum_at["cost_pusd"], index.sum_at["unpriced"]
    by_agent = c.group_by == "agent"
    for row in rows:
        if checks and not all(row[i] in values for i, values in checks):
            continue
        key = row[0] if by_agent else CUSTOMER
        sums[key] = sums.get(key, 0) + row[at]
        cost_pusd += row[cost_at]
        unpriced += row[unpriced_at]
    return sums, cost_pusd, unpriced


def _tier_json(u: Any) -> dict[str, Any]:
    return {
        "from": plain(u.lo),
        "to": None if u.up_to is None else plain(u.up_to),
        "units": plain(u.units),
        "unit_amount": plain(u.unit_amount),
        "flat_amount": plain(u.flat_amount),
        "amount": plain(u.amount),
    }


def _tiers_json(uses: Iterable[Any], seen: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    """The tiers a group used; equal tier uses (every agent past its allowance uses the same $0 first
    tier) share one dict within a document, which is never mutated: fewer objects per preview."""
    out = []
    for u in uses:
        doc = seen.get(u)
        if doc is None:
            doc = seen[u] = _tier_json(u)
        out.append(doc)
    return out


def _free(c: Component, q: Decimal, uses: Iterable[Any]) -> Decimal:
    if c.kind == "package":
        return min(q, c.free_units)
    free = ZERO
    for u in uses:
        if u.unit_amount == 0 and u.flat_amount == 0:
            free += u.units
    return free


def price_line(
    c: Component, spec: PlanSpec, usage: Usage, period: Period, index: Index | None = None
) -> tuple[dict[str, Any], dict[str, Decimal], Decimal]:
    """One invoice line, the precise revenue per agent it can attribute, and its model cost (USD).
    ``index``: the usage's :class:`Index`, when the caller prices several lines of one usage."""
    index = index or Index(usage)
    q = c.quantity
    groups: dict[str, Decimal] = {}
    cost_pusd = unpriced = 0
    if q.source == "fixed":
        groups[CUSTOMER] = q.count
    elif q.source == "seats":
        groups[CUSTOMER] = seats(usage, q.policy, period, index)
    elif q.when:
        for o in usage.outcomes:
            if o.type == q.event_type and triggered(o.attributes, q.when):
                key = o.agent if c.group_by == "agent" else CUSTOMER
                groups[key] = groups.get(key, Decimal(0)) + (o.count if q.field == "count" else o.quantity)
        if not groups and c.group_by == "customer":
            groups[CUSTOMER] = Decimal(0)
    else:
        sums, cost_pusd, unpriced = _meter(c, index)
        groups = {key: Decimal(v) for key, v in sums.items()}
        if not groups and c.group_by == "customer":
            groups[CUSTOMER] = Decimal(0)
    factor = Decimal(1)
    if c.group_by == "agent" and c.allowance_scope == "pooled":
        factor = Decimal(max(1, len(index.active)))
        groups = {CUSTOMER: sum(groups.values(), Decimal(0))}
    out_groups: list[dict[str, Any]] = []
    by_agent: dict[str, Decimal] = {}
    total_q = precise = Decimal(0)
    seen: dict[Any, dict[str, Any]] = {}
    for key in sorted(groups):
        raw = groups[key]
        scaled = scale(raw, c.unit_scale, c.rounding) if q.source == "meter" else raw
        amount, uses = price(c, scaled, factor)
        total_q += scaled
        precise += amount
        if key != CUSTOMER:
            by_agent[key] = amount
        out_groups.append(
            {
                "key": key,
                "raw_quantity": plain(raw),
                "quantity": plain(scaled),
                "free": plain(_free(c, scaled, uses)),
                "tiers": _tiers_json(uses, seen),
                "amount": plain(amount),
            }
        )
    bounded = bound_amount(c, precise)
    amount = round_money(bounded, spec.currency)
    cost = Decimal(cost_pusd) / PICO
    line: dict[str, Any] = {
        "component": c.id,
        "label": c.label,
        "kind": c.kind,
        "group_by": c.group_by,
        "quantity": plain(total_q),
        "groups": out_groups,
        "precise_amount": plain(precise),
        "bounded_amount": plain(bounded),
        "amount": text(amount, spec.currency),
        "amount_minor": to_minor(amount, spec.currency),
        "cost_usd": plain(cost),
        "unpriced_events": unpriced,
    }
    if spec.currency == "USD":
        line["margin"] = plain(amount - cost)
    return line, by_agent, cost


def preview(
    spec: PlanSpec,
    period: Period,
    usage: Usage,
    credits: Iterable[CreditBalance] = (),
    *,
    customer_id: str,
    plan_version_id: str,
    subscription_id: str,
    adjustments: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The invoice document for ``period`` (see the module docs). Pure: reads only its arguments.
    ``adjustments`` are lines for late usage of closed periods (:mod:`authz.billing.adjust`)."""
    doc, _body = document(
        spec,
        period,
        usage,
        credits,
        customer_id=customer_id,
        plan_version_id=plan_version_id,
        subscription_id=subscription_id,
        adjustments=adjustments,
    )
    return doc


def document(
    spec: PlanSpec,
    period: Period,
    usage: Usage,
    credits: Iterable[CreditBalance] = (),
    *,
    customer_id: str,
    plan_version_id: str,
    subscription_id: str,
    adjustments: Iterable[Mapping[str, Any]] = (),
) -> tuple[dict[str, Any], str]:
    """:func:`preview`'s document, and the canonical JSON of the document without its ``etag`` (the
    text the ETag digests, encoded once: :func:`json_with_etag` makes the response body from it)."""
    lines: list[dict[str, Any]] = []
    revenue_by_agent: dict[str, Decimal] = {}
    subtotal_minor = 0
    index = Index(usage)
    for c in spec.components:
        line, by_agent, _cost = price_line(c, spec, usage, period, index)
        lines.append(line)
        subtotal_minor += line["amount_minor"]
        for agent, amount in by_agent.items():
            revenue_by_agent[agent] = revenue_by_agent.get(agent, Decimal(0)) + amount
    for adjustment in adjustments:
        lines.append(dict(adjustment))
        subtotal_minor += adjustment["amount_minor"]
    due = subtotal_minor
    applied: list[dict[str, Any]] = []
    for credit in burn_order(credits):
        if due <= 0:
            break
        take = min(due, credit.remaining_minor)
        if take > 0:
            applied.append(
                {
                    "credit_id": credit.id,
                    "amount": text(from_minor(take, spec.currency), spec.currency),
                    "amount_minor": take,
                }
            )
            due -= take
    pusd_by_agent, pusd_by_workflow = index.pusd_by_agent, index.pusd_by_workflow  # one Decimal per agent / workflow
    cost_by_agent = {a: Decimal(v) / PICO for a, v in pusd_by_agent.items()}
    cost_by_workflow = {w: Decimal(v) / PICO for w, v in pusd_by_workflow.items()}
    total_cost = Decimal(sum(pusd_by_agent.values())) / PICO
    subtotal = from_minor(subtotal_minor, spec.currency)
    usd = spec.currency == "USD"
    agents = sorted(set(revenue_by_agent) | set(cost_by_agent))
    doc: dict[str, Any] = {
        "object": "invoice_preview",
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "plan_version_id": plan_version_id,
        "plan_sha256": spec.sha256(),
        "currency": spec.currency,
        "period": {"start": iso(period.start), "end": iso(period.end)},
        "as_of": None if usage.as_of_ms is None else iso(usage.as_of_ms // 1000),
        "final_after": iso(period.end + spec.grace_hours * 3600),
        "lines": lines,
        "subtotal": text(subtotal, spec.currency),
        "subtotal_minor": subtotal_minor,
        "credits_applied": applied,
        "credits_minor": subtotal_minor - due,
        "total": text(from_minor(due, spec.currency), spec.currency),
        "total_minor": due,
        "cost": {
            "model_cost_usd": plain(total_cost),
            "margin": plain(subtotal - total_cost) if usd else None,
            "by_agent": [_margin(a, revenue_by_agent.get(a, ZERO), cost_by_agent.get(a, ZERO), usd) for a in agents],
            "by_workflow": [{"workflow": w, "cost_usd": plain(cost_by_workflow[w])} for w in sorted(cost_by_workflow)],
        },
    }
    body = canonical(doc)
    doc["etag"] = _tag(body)
    return doc, body


def _margin(agent: str, revenue: Decimal, cost: Decimal, usd: bool) -> dict[str, Any]:
    margin = plain(revenue - cost) if usd else None
    return {"agent": agent, "revenue": plain(revenue), "cost_usd": plain(cost), "margin": margin}


def _tag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def etag(doc: Mapping[str, Any]) -> str:
    """The ETag of a document: a digest of its canonical JSON without ``etag``."""
    return _tag(canonical({k: v for k, v in doc.items() if k != "etag"}))


def json_with_etag(body: str, tag: str) -> str:
    """The document's JSON from :func:`document`'s text, ``etag`` added as its last member (no second
    encoding of the document; the other members stay in canonical order)."""
    return body[:-1] + ',"etag":' + json.dumps(tag) + "}"


__all__ = [
    "FILTER_DIMS",
    "SUMS",
    "CreditBalance",
    "Table",
    "Usage",
    "UsageRow",
    "active_agents",
    "burn_order",
    "document",
    "etag",
    "json_with_etag",
    "preview",
    "price_line",
]
