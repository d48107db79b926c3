"""Done-when 1: the four shapes' exact totals through the HTTP API, from events ingested through
``POST /api/v1/metering/events``, on SQLite and PostgreSQL; plus the compatibility aliases."""

from __future__ import annotations

import pytest

from authz.billing.examples import SHAPES, TOTALS
from tests.authz.billing.conftest import Billed, month_start, sample_month

pytestmark = pytest.mark.anyio


async def test_four_shapes_exact_totals_through_the_api(billed: Billed) -> None:
    start = month_start().isoformat()
    agents = []
    for name in ("support-triage-agent", "sdr-agent", "research-agent"):
        out = await billed.post("/agents", {"name": name, "owner_license_id": "lic_123"})
        assert out["owner_license_id"] == "lic_123"
        agents.append(out["id"])
    for shape, spec in SHAPES.items():
        await billed.post("/plans", {"id": shape, "name": shape, "version": spec})
        # "hybrid" is billed by agent attribution (events without `customer`); the others name it.
        members = agents if shape == "hybrid" else []
        await billed.post("/customers", {"id": f"cust-{shape}", "name": shape, "currency": "USD", "agents": members})
        await billed.post("/subscriptions", {"customer_id": f"cust-{shape}", "plan": shape, "starts_at": start})
        customer = None if shape == "hybrid" else f"cust-{shape}"
        ids = agents if shape == "hybrid" else ["a1", "a2", "a3"]
        out = await billed.post("/metering/events", {"events": sample_month(ids, customer, shape)}, status=200)
        assert out["accepted"] == 46 and out["rejected"] == []
    billed.flush()
    for shape in SHAPES:
        doc = await billed.get(f"/customers/cust-{shape}/invoice-preview")
        assert doc["total"] == TOTALS[shape], (shape, doc["lines"])
        assert doc["subtotal_minor"] == sum(line["amount_minor"] for line in doc["lines"])
    hybrid = await billed.get("/customers/cust-hybrid/invoice-preview")
    tokens = next(line for line in hybrid["lines"] if line["component"] == "tokens")
    assert [(g["key"], g["amount"]) for g in tokens["groups"]] == sorted(zip(agents, ("0", "0", "0.8"), strict=True))
    assert float(tokens["cost_usd"]) > 0 and "margin" in tokens
    assert hybrid["cost"]["by_workflow"][0]["workflow"] == "triage"


async def test_metering_aliases_and_idempotency_key(billed: Billed) -> None:
    agent = (await billed.post("/agents", {"name": "support-triage-agent", "owner_license_id": "lic_1"}))["id"]
    budget = await billed.post(
        f"/agents/{agent}/budgets", {"period": "month", "token_limit": 5000000, "hard_cap": True}
    )
    assert budget["limit"] == 5000000 and budget["hard_cap"] is True
    body = {
        "agent_id": agent,
        "event_type": "tokens.consumed",
        "quantity": 12400,
        "metadata": {"model": "claude-sonnet-4-5", "workflow": "ticket-triage"},
    }
    first = await billed.post("/metering/events", body, status=200, headers={"Idempotency-Key": "req-42"})
    assert first["id"] == "req-42" and first["accepted"] == 1
    again = await billed.post("/metering/events", body, status=200, headers={"Idempotency-Key": "req-42"})
    assert again["accepted"] == 0 and again["duplicates"] == ["req-42"]
    minted = await billed.post("/metering/events", body, status=200)
    assert minted["id"].startswith("evt_") and minted["accepted"] == 1
