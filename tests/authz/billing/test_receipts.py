"""Value receipts: net outcomes and value of a period, signed with the AS's key, verified offline
with the published JWKS (joserfc, as any third party would); outcome aliases and reversals."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from authz.billing.examples import SHAPES
from tests.authz.billing.conftest import Billed, month_start

pytestmark = pytest.mark.anyio


async def test_receipt_is_net_of_reversals_and_verifies_offline(billed: Billed) -> None:
    await billed.post("/plans", {"id": "outcome", "name": "Outcome", "version": SHAPES["outcome"]})
    await billed.post("/customers", {"id": "acme", "name": "Acme", "currency": "USD"})
    await billed.post(
        "/subscriptions", {"customer_id": "acme", "plan": "outcome", "starts_at": month_start().isoformat()}
    )
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "outcome_id": f"mtg-{i}",
            "event_type": "outcome.meeting_booked",
            "agent_id": "a1",
            "customer": "acme",
            "timestamp": now,
            "attributes": {"qualified": True},
            "value": "250.00",
        }
        for i in range(3)
    ]
    events.append(
        {
            "id": "mtg-1:reversal",
            "type": "outcome.meeting_booked",
            "agent": "a1",
            "customer": "acme",
            "timestamp": now,
            "quantity": -1,
            "metadata": {"reverses": "mtg-1", "value": "250.00"},
        }
    )
    events.append(
        {
            "id": "bad-rev",
            "type": "outcome.meeting_booked",
            "agent": "a1",
            "customer": "acme",
            "timestamp": now,
            "quantity": -1,
        }
    )
    out = await billed.post("/metering/events", {"events": events}, status=200)
    assert out["accepted"] == 4 and [r["field"] for r in out["rejected"]] == ["quantity"]
    again = await billed.post("/metering/events", {"events": events[:1]}, status=200)
    assert again["duplicates"] == ["mtg-0"]  # outcome_id is the idempotency key
    billed.flush()
    preview = await billed.get("/customers/acme/invoice-preview")
    assert preview["total"] == "2.40"  # 3 meetings - 1 reversal, at $1.20

    got = await billed.get("/customers/acme/value-receipt")
    claims = got["claims"]
    assert claims["sub"] == "acme" and claims["outcomes"] == [
        {"type": "outcome.meeting_booked", "count": 2, "value": "500"}
    ]
    assert claims["value_total"] == "500" and claims["invoice"] is None
    jwks = (await billed.srv.http.get("/jwks")).json()
    keys = KeySet.import_key_set(jwks)
    verified = jws.deserialize_compact(got["receipt"], keys)
    assert verified.headers()["typ"] == "value-receipt+jwt"
    assert json.loads(verified.payload) == claims
    head, body, sig = got["receipt"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["value_total"] = "5000"
    tampered = ".".join([head, base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode(), sig])
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(tampered, keys)
    # Logged in the audit transparency log by digest (never the receipt itself).
    billed.srv.ctx.audit.flush()
    engine = billed.srv.ctx.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT resource, detail FROM audit_events WHERE event = 'billing.value_receipt'")
        ).all()
    details = [(r, d if isinstance(d, dict) else json.loads(d)) for r, d in rows]
    digest = hashlib.sha256(got["receipt"].encode()).hexdigest()
    assert [(r, d["receipt_sha256"], d["jti"]) for r, d in details] == [("acme", digest, claims["jti"])]
    assert got["receipt"] not in str(details)
