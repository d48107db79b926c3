"""Late usage after close: adjustment lines on the next invoice, never a rewrite of a closed one.

Metering accepts an event up to its late window after the event's own time, so usage of a period can
grow after its invoice was finalized. The finalized invoice never changes. Instead, the preview (and
so the invoice) of a later period re-prices each of the customer's last :data:`LOOKBACK` closed
periods from the rollups as they are now (same plan version, no credits) and, when the usage-priced
lines differ from what was invoiced plus what later invoices already adjusted, adds one
``adjustment`` line for the difference (positive: late usage; negative: a late reversal). Each
difference is billed exactly once: once a later invoice carrying it is finalized, it counts as
adjusted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, text

from authz.billing.money import from_minor
from authz.billing.money import text as money_text
from authz.billing.periods import Period

LOOKBACK = 3  # closed periods re-priced per preview (late windows are far shorter than a period)
KIND = "adjustment"
PRIOR = text(
    "SELECT seq, id, subscription_id, plan_version_id, period_start, period_end, document "
    "FROM billing_invoices WHERE customer_id = :c AND period_end <= :start ORDER BY period_end DESC, seq DESC "
    "LIMIT 3"  # LOOKBACK
)
LATER = text(
    "SELECT document FROM billing_invoices WHERE customer_id = :c AND period_start >= :since AND period_start < :now"
)
Reprice = Callable[[str, str, Period], Mapping[str, Any]]  # (subscription, plan version, period) -> document


def _document(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else dict(json.loads(raw))


def usage_minor(doc: Mapping[str, Any]) -> int:
    """What a document's usage-priced lines add up to (its own adjustment lines left out)."""
    return sum(int(line["amount_minor"]) for line in doc["lines"] if line.get("kind") != KIND)


def adjusted_minor(docs: Iterable[Mapping[str, Any]], invoice_id: str) -> int:
    return sum(
        int(line["amount_minor"])
        for doc in docs
        for line in doc["lines"]
        if line.get("kind") == KIND and line.get("adjusts") == invoice_id
    )


def line(invoice: Mapping[str, Any], number: str, delta_minor: int, currency: str) -> dict[str, Any]:
    amount = from_minor(delta_minor, currency)
    period = invoice["period"]
    return {
        "component": KIND,
        "label": f"Late usage of {number} ({period['start']} to {period['end']})",
        "kind": KIND,
        "group_by": "customer",
        "quantity": "1",
        "groups": [],
        "precise_amount": money_text(amount, currency),
        "bounded_amount": money_text(amount, currency),
        "amount": money_text(amount, currency),
        "amount_minor": delta_minor,
        "cost_usd": "0",
        "unpriced_events": 0,
        "adjusts": invoice["id"],
        "adjusts_number": number,
        "adjusts_period": period,
    }


def adjustments(conn: Connection, customer_id: str, period: Period, reprice: Reprice) -> list[dict[str, Any]]:
    """The adjustment lines for a document of ``period`` (oldest closed period first)."""
    prior = list(conn.execute(PRIOR, {"c": customer_id, "start": period.start}))
    if not prior:
        return []
    since = min(int(r.period_end) for r in prior)
    later = [
        _document(r.document) for r in conn.execute(LATER, {"c": customer_id, "since": since, "now": period.start})
    ]
    out: list[dict[str, Any]] = []
    for r in sorted(prior, key=lambda r: (int(r.period_start), int(r.seq))):
        invoiced = _document(r.document)
        now = reprice(r.subscription_id, r.plan_version_id, Period(int(r.period_start), int(r.period_end)))
        delta = usage_minor(now) - usage_minor(invoiced) - adjusted_minor(later, r.id)
        if delta:
            out.append(line(invoiced, f"INV-{int(r.seq):06d}", delta, invoiced["currency"]))
    return out


__all__ = ["KIND", "LOOKBACK", "adjustments", "line", "usage_minor"]
