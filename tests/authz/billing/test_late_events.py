"""Late events after close: the closed invoice stays byte-identical; the next preview (and invoice)
carries an adjustment line with the exact amount, billed once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from authz.billing.service import BillingService
from tests.authz.billing.conftest import Billed

pytestmark = pytest.mark.anyio
WEEKLY = {
    "currency": "USD",
    "interval": "week",
    "anchor": "anniversary",
    "components": [
        {
            "id": "meetings",
            "label": "Meetings",
            "kind": "unit",
            "unit_amount": "1.20",
            "quantity": {"source": "meter", "event_type": "outcome.meeting_booked", "field": "quantity"},
        }
    ],
}


def meetings(prefix: str, n: int, at: float) -> list[dict[str, Any]]:
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    return [
        {"id": f"{prefix}-{i}", "type": "outcome.meeting_booked", "agent": "a1", "customer": "acme", "timestamp": stamp}
        for i in range(n)
    ]


def stored(engine: sa.Engine, invoice_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM billing_invoices WHERE id = :i"), {"i": invoice_id}).one()


async def test_late_usage_goes_to_the_next_invoice_as_an_adjustment(billed: Billed) -> None:
    now = time.time()
    first_end = int(now) - 3600  # the first weekly period ended an hour ago (inside the late window)
    start = datetime.fromtimestamp(first_end - 7 * 86_400, UTC).isoformat()
    await billed.post("/plans", {"id": "weekly", "name": "Weekly", "version": WEEKLY})
    await billed.post("/customers", {"id": "acme", "name": "Acme", "currency": "USD"})
    await billed.post("/subscriptions", {"customer_id": "acme", "plan": "weekly", "starts_at": start})
    await billed.post("/metering/events", {"events": meetings("on-time", 10, now - 3 * 3600)}, status=200)
    await billed.post("/metering/events", {"events": meetings("current", 2, now)}, status=200)
    billed.flush()
    svc = billed.srv.ctx.billing
    assert isinstance(svc, BillingService)
    closed, created = svc.close("acme", first_end - 1, force=True)
    assert created and closed["total"] == "12.00"
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    row_before = stored(engine, closed["id"])
    api_before = await billed.get(f"/invoices/{closed['id']}")
    # 3 late meetings for the closed period, then a late reversal of one of them.
    late = meetings("late", 3, now - 2 * 3600)
    late.append({**meetings("late-r", 1, now - 2 * 3600)[0], "quantity": -1, "metadata": {"reverses": "late-0"}})
    assert (await billed.post("/metering/events", {"events": late}, status=200))["accepted"] == 4
    billed.flush()
    doc = await billed.get("/customers/acme/invoice-preview")
    adjustment = [line for line in doc["lines"] if line["kind"] == "adjustment"]
    assert [(a["adjusts"], a["amount"], a["amount_minor"]) for a in adjustment] == [(closed["id"], "2.40", 240)]
    assert adjustment[0]["adjusts_number"] == closed["number"]
    assert (doc["subtotal"], doc["total"]) == ("4.80", "4.80")  # 2 meetings now + 2 late ones
    # The closed invoice is byte-identical, in the database and through the API.
    assert stored(engine, closed["id"]) == row_before
    assert json.dumps(await billed.get(f"/invoices/{closed['id']}"), sort_keys=True) == json.dumps(
        api_before, sort_keys=True
    )
    # Billed once: when the invoice carrying it is finalized, the next period's preview has none.
    second, _ = svc.close("acme", int(now), force=True)
    assert [line["amount"] for line in second["lines"] if line["kind"] == "adjustment"] == ["2.40"]
    third = svc.preview("acme", int(now) + 7 * 86_400)
    assert [line for line in third["lines"] if line["kind"] == "adjustment"] == []
