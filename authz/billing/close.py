"""Closing periods: each preview frozen once into an immutable, numbered invoice (replica-safe), in batches.

:func:`finalize_many` closes a batch of (customer, subscription, period) in ONE transaction on ONE
connection, serialised per customer (PostgreSQL: a transaction advisory lock per customer, taken in
key order so two replicas never deadlock; SQLite: ``BEGIN IMMEDIATE``, its one writer). Under the
locks it reads which invoices already exist (finalize twice == once: those are returned unchanged),
the credit balances of every customer of the batch and their usage (a few queries for the whole
batch: :func:`authz.billing.usage.prefetch`), prices each document on the same connection, then
writes all invoices in one multi-row insert, the credits they burned in another, and their webhook
events (``invoice.finalized``; ``credits.low`` when a balance falls below the customer's threshold).
A batch holds each customer at most once (:func:`batches`), so a later period of a customer is
priced after its earlier one is written (late-usage adjustments and credits see it). The unique key
``(subscription_id, period_start)`` makes a writer that slipped past the locks fail; the batch is
then retried one invoice at a time, and a loser returns the winner's invoice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Table, bindparam, text
from sqlalchemy.exc import IntegrityError

from authz.billing import webhooks
from authz.billing.credits import balances_of
from authz.billing.periods import Period
from authz.billing.preview import CreditBalance
from authz.billing.store import new_id
from authz.billing.usage import Prefetched, prefetch
from authz.storage.models.billing import BillingCreditUse, BillingCustomer, BillingInvoice

INVOICES = cast(Table, BillingInvoice.__table__)
USES = cast(Table, BillingCreditUse.__table__)

BATCH = 250  # invoices per transaction
# Statements built once (building SQLAlchemy expressions per invoice cost more than running them).
EXISTING = text("SELECT seq, id, document FROM billing_invoices WHERE subscription_id = :s AND period_start = :p")
EXISTING_OF = text(
    "SELECT subscription_id, period_start, seq, id, document FROM billing_invoices WHERE subscription_id IN :subs"
).bindparams(bindparam("subs", expanding=True))
LOCKS = text(  # in key order: two replicas locking overlapping batches cannot deadlock
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(CAST(:ks AS BIGINT[])) AS t(k) ORDER BY k) s"
)
INSERT = INVOICES.insert().returning(INVOICES.c.seq, sort_by_parameter_order=True)
INSERT_USES = USES.insert()


class Price(Protocol):
    """A period's document from (a connection, the credits, what the batch read once)."""

    def __call__(
        self, conn: Connection, credits: list[CreditBalance], known: Prefetched | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Finalized:
    """A finalized invoice as :func:`authz.billing.service.invoice_json` reads it."""

    seq: int
    id: str
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Due:
    """A period to close: whose, which subscription, and how to price it."""

    customer: BillingCustomer
    subscription_id: str
    period: Period
    price: Price


def lock_key(customer_id: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(b"billing:" + customer_id.encode(), digest_size=8).digest(), "big", signed=True
    )


@contextmanager
def customers_tx(engine: Engine, customer_ids: Iterable[str]) -> Iterator[Connection]:
    """One transaction holding the close lock of every customer in ``customer_ids``."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            conn.execute(LOCKS, {"ks": sorted({lock_key(c) for c in customer_ids})})
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _document(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else dict(json.loads(raw))


def existing(conn: Connection, subscription_id: str, period_start: int) -> Finalized | None:
    row = conn.execute(EXISTING, {"s": subscription_id, "p": period_start}).first()
    if row is None:
        return None
    return Finalized(int(row.seq), row.id, _document(row.document))


def batches(items: list[Due], size: int = BATCH) -> Iterator[list[Due]]:
    """``items`` in batches of distinct customers: each customer's n-th period goes in a batch after
    the one holding its (n-1)-th (items of a customer come in period order)."""
    rank: dict[str, int] = {}
    ranked = []
    for item in items:
        n = rank.get(item.customer.id, 0)
        rank[item.customer.id] = n + 1
        ranked.append((n, item))
    ranked.sort(key=lambda pair: pair[0])  # stable: period order within a customer is kept
    batch: list[Due] = []
    seen: set[str] = set()
    for _n, item in ranked:
        if len(batch) >= size or item.customer.id in seen:
            yield batch
            batch, seen = [], set()
        batch.append(item)
        seen.add(item.customer.id)
    if batch:
        yield batch


def _credits_low(item: Due, credits: list[CreditBalance], doc: dict[str, Any], invoice_id: str) -> dict[str, Any]:
    """The ``credits.low`` event's data, or {} when the invoice leaves the balance above the threshold."""
    customer = item.customer
    before = sum(c.remaining_minor for c in credits)
    after = before - doc["credits_minor"]
    low = customer.credits_low_minor
    if low is None or not doc["credits_minor"] or not after < low <= before:
        return {}
    return {
        "customer_id": customer.id,
        "currency": customer.currency,
        "remaining_minor": after,
        "threshold_minor": low,
        "invoice_id": invoice_id,
    }


def _finalize_batch(engine: Engine, batch: list[Due], now: int) -> list[tuple[Finalized, bool]]:
    out: list[tuple[Finalized, bool] | None] = [None] * len(batch)
    with customers_tx(engine, (d.customer.id for d in batch)) as conn:
        subs = sorted({d.subscription_id for d in batch})
        found = {(r.subscription_id, int(r.period_start)): r for r in conn.execute(EXISTING_OF, {"subs": subs})}
        credit_rows = balances_of(conn, sorted({d.customer.id for d in batch}))
        endpoints = webhooks.endpoints(conn)
        todo = [d for d in batch if (d.subscription_id, d.period.start) not in found]
        known = prefetch(conn, [(d.customer.id, d.subscription_id, d.period) for d in todo]) if len(todo) > 1 else None
        rows: list[dict[str, Any]] = []
        uses: list[dict[str, Any]] = []
        events: list[tuple[str, str, dict[str, Any]]] = []
        made: list[tuple[int, str, dict[str, Any]]] = []
        for i, item in enumerate(batch):
            row = found.get((item.subscription_id, item.period.start))
            if row is not None:
                out[i] = (Finalized(int(row.seq), row.id, _document(row.document)), False)
                continue
            end = item.period.end
            credits = [
                c for c, effective_at in credit_rows.get(item.customer.id, ())
                if effective_at <= end and (c.expires_at is None or c.expires_at >= end)
            ]  # fmt: skip
            invoice_id = new_id("in")
            doc = item.price(conn, credits, known)
            doc = {**doc, "object": "invoice", "id": invoice_id, "status": "finalized", "finalized_at": now}
            rows.append(
                {
                    "id": invoice_id,
                    "customer_id": item.customer.id,
                    "subscription_id": item.subscription_id,
                    "plan_version_id": doc["plan_version_id"],
                    "period_start": item.period.start,
                    "period_end": end,
                    "currency": doc["currency"],
                    "subtotal_minor": doc["subtotal_minor"],
                    "credits_minor": doc["credits_minor"],
                    "total_minor": doc["total_minor"],
                    "document": doc,
                    "etag": doc["etag"],
                    "finalized_at": now,
                }
            )
            uses += [
                {"credit_id": c["credit_id"], "invoice_id": invoice_id, "amount_minor": c["amount_minor"], "at": now}
                for c in doc["credits_applied"]
            ]
            summary = {k: doc[k] for k in ("id", "customer_id", "currency", "subtotal", "total", "period")}
            events.append((invoice_id, "invoice.finalized", summary))
            low = _credits_low(item, credits, doc, invoice_id)
            if low:
                events.append((invoice_id, "credits.low", low))
            made.append((i, invoice_id, doc))
        if rows:
            seqs = [int(s) for s in conn.execute(INSERT, rows).scalars()]
            if uses:
                conn.execute(INSERT_USES, uses)
            for source, event_type, data in events:
                webhooks.emit(conn, source, event_type, data, now * 1000, endpoints)
            for (i, invoice_id, doc), seq in zip(made, seqs, strict=True):
                out[i] = (Finalized(seq, invoice_id, doc), True)
    return [o for o in out if o is not None]


def finalize_many(engine: Engine, items: list[Due], now: int, size: int = BATCH) -> list[tuple[Finalized, bool]]:
    """Each item's invoice, created now or found, and whether this call created it (in the order of
    :func:`batches`)."""
    out: list[tuple[Finalized, bool]] = []
    for batch in batches(items, size):
        try:
            out += _finalize_batch(engine, batch, now)
        except IntegrityError:  # another replica finalized one of them between our check and our insert
            if len(batch) > 1:
                for item in batch:
                    out += finalize_many(engine, [item], now)
                continue
            with engine.connect() as conn:
                row = existing(conn, batch[0].subscription_id, batch[0].period.start)
            if row is None:
                raise
            out.append((row, False))
    return out


def finalize(engine: Engine, item: Due, now: int) -> tuple[Finalized, bool]:
    """The invoice of one (subscription, period), created now or found; and whether this call created it."""
    [result] = finalize_many(engine, [item], now)
    return result
