"""Value receipts: a customer's outcomes delivered in one period, and their value, sealed as a JWS
signed with the authorization server's own signing key (``typ: value-receipt+jwt``).

Anyone can verify a receipt offline with the AS's published JWKS (``/jwks``): the signature, the
``iss``, the ``sub`` (the customer) and the ``period``. Unlike a trust mark, the customer needs
nothing from us but the public key. The receipt names the finalized invoice of the period when
there is one, so receipt and invoice can be matched.

Counts are net: a reversal (``quantity: -1``, ``metadata.reverses``) subtracts its outcome, and
its ``metadata.value`` (when given) subtracts the value. Receipts read the outcome events of the
period (``outcome.*`` only, a small fraction of the events) because values live in event metadata.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, select

from authz.billing.money import plain
from authz.billing.periods import Period, iso
from authz.metering.sink import EVENTS
from authz.oauth.jws import Signer

TYP = "value-receipt+jwt"


def outcomes(engine: Engine, customer: str, period: Period) -> list[dict[str, Any]]:
    """Net count and value per outcome type of ``customer`` in ``period``."""
    query = select(EVENTS.c.type, EVENTS.c.quantity, EVENTS.c["metadata"]).where(
        EVENTS.c.occurred_at_ms >= period.start * 1000,
        EVENTS.c.occurred_at_ms < period.end * 1000,
        EVENTS.c.customer == customer,
        EVENTS.c.type.like("outcome.%"),
    )
    totals: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for etype, quantity, meta in conn.execute(query):
            acc = totals.setdefault(etype, [0, Decimal(0)])
            acc[0] += int(quantity)
            raw = meta.get("value") if isinstance(meta, dict) else None
            if raw is not None:
                try:
                    value = Decimal(str(raw))
                except InvalidOperation:
                    continue
                if value.is_finite():
                    acc[1] += value if quantity >= 0 else -value
    return [{"type": t, "count": n, "value": plain(v)} for t, (n, v) in sorted(totals.items())]


def seal(
    signer: Signer,
    issuer: str,
    customer: str,
    currency: str,
    period: Period,
    items: list[dict[str, Any]],
    invoice_id: str | None,
    now: int,
) -> tuple[str, dict[str, Any]]:
    """(the signed receipt, its claims)."""
    total = sum((Decimal(i["value"]) for i in items), Decimal(0))
    claims = {
        "iss": issuer,
        "sub": customer,
        "iat": now,
        "jti": "vr_" + secrets.token_hex(12),
        "period": {"start": iso(period.start), "end": iso(period.end)},
        "currency": currency,
        "outcomes": items,
        "value_total": plain(total),
        "invoice": invoice_id,
    }
    return signer.retyped(TYP).sign(claims), claims
