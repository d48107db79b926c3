"""Closing a period: the preview frozen once into an immutable, numbered invoice (replica-safe).

One transaction per invoice, serialised per customer (PostgreSQL: a transaction advisory lock on
the customer; SQLite: ``BEGIN IMMEDIATE``, its one writer): if the (subscription, period) invoice
exists it is returned unchanged (finalize twice == once), else the credit balances are read under
the lock, the document is priced, and the invoice, the credits it burned and its webhook events
(``invoice.finalized``; ``credits.low`` when the balance falls below the customer's threshold) are
written together. The unique key ``(subscription_id, period_start)`` makes a second writer that
slipped past the lock fail, and it then returns the first one's invoice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.exc import IntegrityError

from authz.billing import webhooks
from authz.billing.credits import balances
from authz.billing.periods import Period
from authz.billing.preview import CreditBalance
from authz.billing.store import new_id
from authz.storage.models.billing import BillingCreditUse, BillingCustomer, BillingInvoice

INVOICES = cast(Table, BillingInvoice.__table__)
USES = cast(Table, BillingCreditUse.__table__)
Price = Callable[[list[CreditBalance]], dict[str, Any]]
# Statements built once (building SQLAlchemy expressions per invoice cost more than running them).
EXISTING = text("SELECT seq, id, document FROM billing_invoices WHERE subscription_id = :s AND period_start = :p")
INSERT = INVOICES.insert().returning(INVOICES.c.seq)
INSERT_USES = USES.insert()


@dataclass(frozen=True, slots=True)
class Finalized:
    """A finalized invoice as :func:`authz.billing.service.invoice_json` reads it."""

    seq: int
    id: str
    document: dict[str, Any]


def lock_key(customer_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(b"billing:" + customer_id.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def customer_tx(engine: Engine, customer_id: str) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(customer_id)})
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def existing(conn: Connection, subscription_id: str, period_start: int) -> Finalized | None:
    row = conn.execute(EXISTING, {"s": subscription_id, "p": period_start}).first()
    if row is None:
        return None
    document = row.document if isinstance(row.document, dict) else json.loads(row.document)
    return Finalized(int(row.seq), row.id, document)


def finalize(
    engine: Engine, customer: BillingCustomer, subscription_id: str, period: Period, price: Price, now: int
) -> tuple[Finalized, bool]:
    """The invoice of (subscription, period), created now or found; and whether this call created it."""
    try:
        with customer_tx(engine, customer.id) as conn:
            row = existing(conn, subscription_id, period.start)
            if row is not None:
                return row, False
            credits = balances(conn, customer.id, period.end)
            doc = price(credits)
            invoice_id = new_id("in")
            doc = {**doc, "object": "invoice", "id": invoice_id, "status": "finalized", "finalized_at": now}
            seq = conn.execute(
                INSERT,
                {
                    "id": invoice_id,
                    "customer_id": customer.id,
                    "subscription_id": subscription_id,
                    "plan_version_id": doc["plan_version_id"],
                    "period_start": period.start,
                    "period_end": period.end,
                    "currency": doc["currency"],
                    "subtotal_minor": doc["subtotal_minor"],
                    "credits_minor": doc["credits_minor"],
                    "total_minor": doc["total_minor"],
                    "document": doc,
                    "etag": doc["etag"],
                    "finalized_at": now,
                },
            ).scalar_one()
            uses = [
                {"credit_id": c["credit_id"], "invoice_id": invoice_id, "amount_minor": c["amount_minor"], "at": now}
                for c in doc["credits_applied"]
            ]
            if uses:
                conn.execute(INSERT_USES, uses)
            summary = {k: doc[k] for k in ("id", "customer_id", "currency", "subtotal", "total", "period")}
            webhooks.emit(conn, invoice_id, "invoice.finalized", summary, now * 1000)
            before = sum(c.remaining_minor for c in credits)
            after = before - doc["credits_minor"]
            low = customer.credits_low_minor
            if low is not None and doc["credits_minor"] and after < low <= before:
                data = {
                    "customer_id": customer.id,
                    "currency": customer.currency,
                    "remaining_minor": after,
                    "threshold_minor": low,
                    "invoice_id": invoice_id,
                }
                webhooks.emit(conn, invoice_id, "credits.low", data, now * 1000)
            return Finalized(int(seq), invoice_id, doc), True
    except IntegrityError:  # another replica finalized it between our check and our insert
        with engine.connect() as conn:
            row = existing(conn, subscription_id, period.start)
        if row is None:
            raise
        return row, False
