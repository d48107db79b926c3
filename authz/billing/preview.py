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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from authz.billing.components import FILTER_DIMS, Component, price, scale
from authz.billing.components import bound as bound_amount
from authz.billing.money import from_minor, plain, round_money, text, to_minor
from authz.billing.outcomes import OutcomeRow, triggered
from authz.billing.periods import Period, iso
from authz.billing.plans import PlanSpec, canonical

PICO = Decimal("1e12")
SUMS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_pusd",
    "priced",
    "unpriced",
)
CUSTOMER = "*"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Summed rollups of one (agent, event type, dimensions) in the period."""

    agent: str
    type: str
    dims: Mapping[str, str]  # FILTER_DIMS values
    sums: Mapping[str, int]  # SUMS


@dataclass(frozen=True, slots=True)
class Usage:
    rows: tuple[UsageRow, ...]
    agent_days: Mapping[str, int] = field(default_factory=dict)  # days each agent was active (prorated seats)
    as_of_ms: int | None = None  # the newest flushed event
    outcomes: tuple[OutcomeRow, ...] = ()  # outcome counts by attribute set (plans with triggers)


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


def field_value(row: UsageRow, name: str) -> int:
    if name == "tokens":  # input + output; a tokens.consumed event's quantity is exactly that (or the unsplit total)
        return row.sums["quantity"]
    return row.sums[name]


def matches(row: UsageRow, c: Component) -> bool:
    q = c.quantity
    return row.type == q.event_type and all(row.dims.get(d, "") in values for d, values in q.filter)


def active_agents(usage: Usage) -> list[str]:
    return sorted({r.agent for r in usage.rows if r.sums["count"] > 0 and r.agent})


def seats(usage: Usage, policy: str, period: Period) -> Decimal:
    if policy == "prorated_days":
        days = sum(min(d, period.days) for d in usage.agent_days.values())
        return Decimal(days) / Decimal(period.days)
    return Decimal(len(active_agents(usage)))


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
    return sum((u.units for u in uses if u.unit_amount == 0 and u.flat_amount == 0), Decimal(0))


def price_line(
    c: Component, spec: PlanSpec, usage: Usage, period: Period
) -> tuple[dict[str, Any], dict[str, Decimal], Decimal]:
    """One invoice line, the precise revenue per agent it can attribute, and its model cost (USD)."""
    q = c.quantity
    groups: dict[str, Decimal] = {}
    cost_pusd = unpriced = 0
    if q.source == "fixed":
        groups[CUSTOMER] = q.count
    elif q.source == "seats":
        groups[CUSTOMER] = seats(usage, q.policy, period)
    elif q.when:
        for o in usage.outcomes:
            if o.type == q.event_type and triggered(o.attributes, q.when):
                key = o.agent if c.group_by == "agent" else CUSTOMER
                groups[key] = groups.get(key, Decimal(0)) + (o.count if q.field == "count" else o.quantity)
        if not groups and c.group_by == "customer":
            groups[CUSTOMER] = Decimal(0)
    else:
        sums: dict[str, int] = {}  # integers while summing: one Decimal per group, not one per row
        by_agent_key = c.group_by == "agent"
        name = "quantity" if q.field == "tokens" else q.field  # tokens: input + output (see field_value)
        for row in usage.rows:
            if matches(row, c):
                key = row.agent if by_agent_key else CUSTOMER
                sums[key] = sums.get(key, 0) + row.sums[name]
                cost_pusd += row.sums["cost_pusd"]
                unpriced += row.sums["unpriced"]
        groups = {key: Decimal(v) for key, v in sums.items()}
        if not groups and c.group_by == "customer":
            groups[CUSTOMER] = Decimal(0)
    factor = Decimal(1)
    if c.group_by == "agent" and c.allowance_scope == "pooled":
        factor = Decimal(max(1, len(active_agents(usage))))
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
    lines: list[dict[str, Any]] = []
    revenue_by_agent: dict[str, Decimal] = {}
    subtotal_minor = 0
    for c in spec.components:
        line, by_agent, _cost = price_line(c, spec, usage, period)
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
    pusd_by_agent: dict[str, int] = {}  # pico-USD integers while summing; one Decimal per agent / workflow
    pusd_by_workflow: dict[str, int] = {}
    for row in usage.rows:
        pusd = row.sums["cost_pusd"]
        if pusd:
            pusd_by_agent[row.agent] = pusd_by_agent.get(row.agent, 0) + pusd
            wf = row.dims.get("workflow", "")
            pusd_by_workflow[wf] = pusd_by_workflow.get(wf, 0) + pusd
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
            "by_agent": [
                {
                    "agent": a,
                    "revenue": plain(revenue_by_agent.get(a, Decimal(0))),
                    "cost_usd": plain(cost_by_agent.get(a, Decimal(0))),
                    "margin": plain(revenue_by_agent.get(a, Decimal(0)) - cost_by_agent.get(a, Decimal(0)))
                    if usd
                    else None,
                }
                for a in agents
            ],
            "by_workflow": [{"workflow": w, "cost_usd": plain(cost_by_workflow[w])} for w in sorted(cost_by_workflow)],
        },
    }
    doc["etag"] = etag(doc)
    return doc


def _agent_margin(agent: str, revenue: Decimal, cost: Decimal, usd: bool) -> dict[str, Any]:
    margin = plain(revenue - cost) if usd else None
    return {"agent": agent, "revenue": plain(revenue), "cost_usd": plain(cost), "margin": margin}


def etag(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "etag"}
    return '"' + hashlib.sha256(canonical(body).encode()).hexdigest()[:32] + '"'


__all__ = ["FILTER_DIMS", "SUMS", "CreditBalance", "Usage", "UsageRow", "burn_order", "preview", "price_line"]
