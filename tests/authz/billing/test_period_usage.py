"""Billing usage per period: built by the flush that first meets a subscription period, kept by every
later flush, and always equal to the metering rollups of the period's hours (same preview, same ETag)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from authz.billing.examples import SHAPES
from tests.authz.billing.conftest import Billed, month_start, sample_month

pytestmark = pytest.mark.anyio


def built(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT subscription_id, period_start FROM billing_usage_periods")))


async def test_period_usage_is_built_kept_and_equal_to_the_rollups(billed: Billed) -> None:
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    await billed.post("/plans", {"id": "hybrid", "name": "Hybrid", "version": SHAPES["hybrid"]})
    await billed.post("/customers", {"id": "acme", "name": "Acme", "currency": "USD"})
    events = sample_month(["a1", "a2", "a3"], "acme", "p")
    # Events before the subscription exists: in the metering rollups only.
    await billed.post("/metering/events", {"events": events[:10]}, status=200)
    billed.flush()
    assert built(engine) == []
    sub = await billed.post(
        "/subscriptions", {"customer_id": "acme", "plan": "hybrid", "starts_at": month_start().isoformat()}
    )
    # The next flush meets the period: builds it from the rollups (its own events included, once).
    await billed.post("/metering/events", {"events": events[10:30]}, status=200)
    billed.flush()
    assert [(s, int(p)) for s, p in built(engine)] == [(sub["id"], int(month_start().timestamp()))]
    # Later flushes add their deltas to it.
    await billed.post("/metering/events", {"events": events[30:]}, status=200)
    billed.flush()
    kept = await billed.get("/customers/acme/invoice-preview")
    assert kept["total"] == "231.80"
    with engine.begin() as conn:  # forget the built period: the preview reads the metering rollups
        conn.execute(sa.text("DELETE FROM billing_usage"))
        conn.execute(sa.text("DELETE FROM billing_usage_periods"))
    from_rollups = await billed.get("/customers/acme/invoice-preview")
    assert from_rollups == kept
