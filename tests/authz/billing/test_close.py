"""Closing periods: finalize twice == once; two replicas closing the same period produce one invoice;
previews change nothing; invoices as JSON and CSV; credits burned once; webhooks enqueued once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from authz.billing.examples import SHAPES
from authz.billing.periods import parse_instant
from authz.billing.service import BillingService
from authz.storage.db import make_engine
from tests.authz.billing.conftest import Billed, month_start, sample_month

pytestmark = pytest.mark.anyio
TABLES = (
    "billing_invoices",
    "billing_credit_uses",
    "billing_credits",
    "billing_subscriptions",
    "webhook_outbox",
    "metering_events",
    "metering_rollups",
    "metering_rollups_daily",
    "metering_rollups_monthly",
    "billing_usage",
    "billing_usage_periods",
    "billing_outcomes",
    "billing_outcome_attrs",
    "billing_usage_outcomes",
)


def snapshot(engine: sa.Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {t: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {t}")).all()), key=repr) for t in TABLES}


async def hybrid_customer(billed: Billed) -> None:
    await billed.post("/plans", {"id": "hybrid", "name": "Hybrid", "version": SHAPES["hybrid"]})
    await billed.post("/customers", {"id": "acme", "name": "Acme", "currency": "USD", "credits_low_threshold": "20"})
    await billed.post(
        "/subscriptions", {"customer_id": "acme", "plan": "hybrid", "starts_at": month_start().isoformat()}
    )
    await billed.post("/credits", {"customer_id": "acme", "amount": "50.00", "category": "promotional"})
    await billed.post("/billing/webhooks", {"url": "https://billing.example.com/hook"})
    out = await billed.post("/metering/events", {"events": sample_month(["a1", "a2", "a3"], "acme", "h")}, status=200)
    assert out["accepted"] == 46
    billed.flush()


async def test_previews_change_nothing_and_two_replicas_close_once(billed: Billed, db_url: str) -> None:
    await hybrid_customer(billed)
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    before = snapshot(engine)
    preview = await billed.get("/customers/acme/invoice-preview")
    assert (preview["subtotal"], preview["total"]) == ("231.80", "181.80")
    r = await billed.srv.http.get(
        "/api/v1/customers/acme/invoice-preview", headers={**billed.headers, "If-None-Match": preview["etag"]}
    )
    assert r.status_code == 304
    assert snapshot(engine) == before

    after_grace = parse_instant(preview["final_after"]) + 1
    engines = [make_engine(db_url) for _ in range(2)]
    replicas = [BillingService(e, billed.srv.ctx.keyring, clock=lambda: after_grace) for e in engines]
    at = parse_instant(preview["period"]["start"])
    results: list[tuple[dict[str, Any], bool]] = []
    barrier = threading.Barrier(2)

    def close(svc: BillingService) -> None:
        barrier.wait()
        results.append(svc.close("acme", at))

    threads = [threading.Thread(target=close, args=(svc,)) for svc in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created for _doc, created in results) == [False, True]
    assert len({doc["id"] for doc, _created in results}) == 1
    again, created = replicas[0].close("acme", at)  # finalize twice == once
    assert not created and again == results[0][0]
    assert replicas[1].close_due() == [] or all(not c for _d, c in replicas[1].close_due())
    for e in engines:
        e.dispose()

    invoice = again
    assert invoice["number"].startswith("INV-") and invoice["total"] == "181.80"
    state = snapshot(engine)
    assert len(state["billing_invoices"]) == 1 and len(state["billing_credit_uses"]) == 1
    kinds = sorted(row[5] for row in state["webhook_outbox"])  # period_key column holds the event type
    assert kinds == ["credits.low", "invoice.finalized"]
    listed = await billed.get("/invoices", params={"customer": "acme"})
    assert [i["id"] for i in listed["items"]] == [invoice["id"]]
    got = await billed.get(f"/invoices/{invoice['id']}")
    assert got == invoice
    csv_text = await billed.get(f"/invoices/{invoice['id']}", params={"format": "csv"})
    assert csv_text.splitlines()[0].startswith("invoice,number,customer")
    assert any(line.endswith(",181.80,") or ",181.80," in line for line in csv_text.splitlines())
    credits = await billed.get("/credits", params={"customer": "acme"})
    assert credits["items"][0]["remaining"] == "0.00"


async def test_close_refuses_an_open_period_and_bad_input_changes_nothing(billed: Billed) -> None:
    await hybrid_customer(billed)
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    before = snapshot(engine)
    now = month_start().isoformat()
    r = await billed.srv.http.post(
        "/api/v1/invoices/close", json={"customer_id": "acme", "at": now}, headers=billed.headers
    )
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("/customers", {"id": "x", "name": "X", "currency": "XYZ"}, "currency"),
        ("/plans", {"id": "p", "name": "P", "version": SHAPES["hybrid"] | {"currency": "EURO"}}, "currency"),
        (
            "/plans",
            {
                "id": "p",
                "name": "P",
                "version": SHAPES["overage"]
                | {
                    "components": [
                        SHAPES["overage"]["components"][1]
                        | {
                            "tiers": [
                                {"up_to": "5", "unit_amount": "0"},
                                {"up_to": "2", "unit_amount": "1"},
                                {"up_to": None, "unit_amount": "1"},
                            ]
                        }
                    ]
                },
            },
            "components.0.tiers.1.up_to",
        ),
        (
            "/plans",
            {
                "id": "p",
                "name": "P",
                "version": SHAPES["subscription"]
                | {"components": [SHAPES["subscription"]["components"][0] | {"amount": "-49"}]},
            },
            "components.0.amount",
        ),
        ("/subscriptions", {"customer_id": "acme", "plan": "hybrid", "starts_at": "2099-01-15T10:00:00Z"}, "starts_at"),
        ("/credits", {"customer_id": "acme", "amount": "-5"}, "amount"),
        (
            "/metering/events",
            {
                "id": "u1",
                "type": "call.completed",
                "agent": "a1",
                "customer": "nobody",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "customer",
        ),
    ]
    for path, body, field in bad:
        r = await billed.srv.http.post("/api/v1" + path, json=body, headers=billed.headers)
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]], (path, r.json())
    billed.flush()
    assert snapshot(engine) == before
    assert [p["id"] for p in (await billed.get("/plans"))["items"]] == ["hybrid"]


async def test_two_replicas_closing_due_periods_in_batches_make_each_invoice_once(
    billed: Billed, db_url: str, engines_to_dispose: list[sa.Engine]
) -> None:
    """``close_due`` closes many customers per transaction: two replicas racing over the same due
    periods still make one invoice per (subscription, period), and a customer's two due periods burn
    its credit in period order (each batch holds a customer once)."""
    svc = billed.srv.ctx.billing
    assert svc is not None
    this = month_start()
    two_ago = month_start(month_start(this.timestamp() - 1).timestamp() - 1)
    svc.create_plan("hybrid", "Hybrid", SHAPES["hybrid"])
    customers = [f"c{i:02d}" for i in range(7)]
    for c in customers:
        svc.create_customer(id=c, name=c, currency="USD")
        svc.subscribe(c, "hybrid", int(two_ago.timestamp()))
    svc.grant("c03", "300.00", effective_at=int(two_ago.timestamp()))
    now = this.timestamp() + 86_400  # the two previous months are past their grace period
    engines = [make_engine(db_url) for _ in range(2)]
    engines_to_dispose.extend(engines)
    replicas = [BillingService(e, billed.srv.ctx.keyring, clock=lambda: now) for e in engines]
    for r in replicas:  # small batches: several transactions per pass, and the race spans them
        r.close_batch = 3
    results: list[list[tuple[dict[str, Any], bool]]] = []
    barrier = threading.Barrier(2)

    def close_due(r: BillingService) -> None:
        barrier.wait()
        results.append(r.close_due())

    threads = [threading.Thread(target=close_due, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [doc for docs in results for doc, made in docs if made]
    assert len(created) == 2 * len(customers)
    assert len({(d["subscription_id"], d["period"]["start"]) for d in created}) == 2 * len(customers)
    invoices = svc.invoices()
    assert sorted(d["id"] for d in invoices) == sorted(d["id"] for d in created)
    assert replicas[0].close_due() == []  # nothing left to close
    c03 = sorted(svc.invoices("c03"), key=lambda d: d["period"]["start"])
    assert [(d["subtotal"], d["total"]) for d in c03] == [("199.00", "0.00"), ("199.00", "98.00")]
    assert [rem for _c, rem in svc.credit_balances("c03")] == [0]
