"""Outcome triggers: bill ``outcome.meeting_booked`` only when ``attributes.qualified == true``, from the
rollups (by attribute set), with exact cents; a reversal undoes exactly its original's contribution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.authz.billing.conftest import Billed, month_start

pytestmark = pytest.mark.anyio
QUALIFIED = {
    "currency": "USD",
    "components": [
        {
            "id": "meetings",
            "label": "Qualified meetings",
            "kind": "unit",
            "unit_amount": "1.20",
            "quantity": {
                "source": "meter",
                "event_type": "outcome.meeting_booked",
                "field": "quantity",
                "when": {"qualified": True},
            },
        }
    ],
}


def meeting(i: int, qualified: bool) -> dict[str, Any]:
    return {
        "id": f"mtg-{i}",
        "type": "outcome.meeting_booked",
        "agent": f"a{i % 3}",
        "customer": "acme",
        "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {"qualified": qualified, "value": "250.00"},
    }


def reversal(i: int) -> dict[str, Any]:
    return {
        "id": f"mtg-{i}:reversal",
        "type": "outcome.meeting_booked",
        "agent": f"a{i % 3}",
        "customer": "acme",
        "quantity": -1,
        "timestamp": datetime.now(UTC).isoformat(),
        "metadata": {"reverses": f"mtg-{i}"},
    }


async def test_trigger_bills_only_qualified_outcomes_and_reversals_undo_them(billed: Billed) -> None:
    await billed.post("/plans", {"id": "qualified", "name": "Qualified", "version": QUALIFIED})
    await billed.post("/customers", {"id": "acme", "name": "Acme", "currency": "USD"})
    await billed.post(
        "/subscriptions", {"customer_id": "acme", "plan": "qualified", "starts_at": month_start().isoformat()}
    )
    events = [meeting(i, qualified=i < 30) for i in range(40)]  # 30 qualified, 10 not
    assert (await billed.post("/metering/events", {"events": events}, status=200))["accepted"] == 40
    billed.flush()
    doc = await billed.get("/customers/acme/invoice-preview")
    assert (doc["lines"][0]["quantity"], doc["total"]) == ("30", "36.00")
    # Reversals in a later flush: of a qualified meeting (-1.20) and of an unqualified one (no change).
    out = await billed.post("/metering/events", {"events": [reversal(3), reversal(35)]}, status=200)
    assert out["accepted"] == 2
    billed.flush()
    doc = await billed.get("/customers/acme/invoice-preview")
    assert (doc["lines"][0]["quantity"], doc["total"]) == ("29", "34.80")
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:  # the same document from the hourly outcome rollups
        for table in ("billing_usage", "billing_usage_outcomes", "billing_usage_periods"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    assert await billed.get("/customers/acme/invoice-preview") == doc


async def test_a_trigger_on_a_token_meter_is_refused_naming_the_field(billed: Billed) -> None:
    spec = {**QUALIFIED, "components": [{**QUALIFIED["components"][0]}]}  # type: ignore[dict-item]
    spec["components"][0]["quantity"] = {**spec["components"][0]["quantity"], "event_type": "tokens.consumed"}
    r = await billed.srv.http.post(
        "/api/v1/plans", json={"id": "bad", "name": "Bad", "version": spec}, headers=billed.headers
    )
    assert r.status_code == 422 and "components.0.quantity.when" in r.text
    assert '"bad"' not in str(await billed.get("/plans")).replace("'", '"')  # nothing was written
