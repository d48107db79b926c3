"""The billing service: the one API the admin REST routes, the CLI and the console call.

``BillingService(engine, keyring)`` wraps the store (customers, plans, subscriptions, credits), the
pure preview over rollups, closing periods into invoices, webhooks and value receipts. Metering
asks it, per ingested event, which customer an agent belongs to (:meth:`attribute`).
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Engine, Table, select, text

from authz.billing import adjust, close, receipts
from authz.billing.credits import balances
from authz.billing.errors import NotFound
from authz.billing.periods import Period, period_at
from authz.billing.preview import CreditBalance, preview
from authz.billing.store import BillingStore, Version
from authz.billing.usage import customer_usage
from authz.billing.webhooks import BillingWebhooks
from authz.core.crypto import Keyring
from authz.oauth.jws import Signer
from authz.storage.models.billing import BillingCredit, BillingCustomer, BillingInvoice, BillingSubscription

ATTRIBUTION_TTL = 2.0  # seconds an agent -> customer map is reused before it is read again
INVOICES = cast(Table, BillingInvoice.__table__)
DONE = "SELECT subscription_id, period_start FROM billing_invoices"


class BillingService:
    def __init__(self, engine: Engine, keyring: Keyring, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.keyring = keyring
        self.clock = clock
        self.store = BillingStore(engine, clock)
        self.webhooks = BillingWebhooks(engine, keyring)
        self._lock = threading.Lock()
        self._map: tuple[float, dict[str, str], set[str]] | None = None

    # -- attribution (called by metering ingestion) -----------------------------------------------
    def invalidate(self) -> None:
        self._map = None

    def _attribution(self) -> tuple[dict[str, str], set[str]]:
        cached = self._map
        now = time.monotonic()
        if cached is None or now - cached[0] > ATTRIBUTION_TTL:
            with self._lock:
                cached = (now, self.store.agent_customers(), self.store.customer_ids())
                self._map = cached
        return cached[1], cached[2]

    def attribute(self, agent: str, customer: str) -> tuple[str, str | None]:
        """(the customer an event is billed to, or an error about its ``customer`` field)."""
        agents, customers = self._attribution()
        if customer:
            if customer not in customers:
                self.invalidate()  # created a moment ago on another replica? read again once
                agents, customers = self._attribution()
                if customer not in customers:
                    return customer, f"no customer {customer!r}; create it first (POST /api/v1/customers)"
            return customer, None
        return agents.get(agent, ""), None

    # -- records --------------------------------------------------------------------------------
    def create_customer(self, **fields: Any) -> BillingCustomer:
        row = self.store.create_customer(**fields)
        self.invalidate()
        return row

    def assign(self, customer_id: str, subject_type: str, subject_id: str) -> None:
        self.store.assign(customer_id, subject_type, subject_id)
        self.invalidate()

    def customer_page(self, after: str = "", limit: int = 50) -> list[BillingCustomer]:
        """Customers ordered by id, those after ``after``, at most ``limit``: one bounded read."""
        query = select(BillingCustomer).where(BillingCustomer.id > after).order_by(BillingCustomer.id).limit(limit)
        with self.store.session() as s:
            return list(s.scalars(query))

    def credit_balances(self, customer_id: str) -> list[tuple[BillingCredit, int]]:
        """Each grant of the customer with its remaining balance (minor units)."""
        self.store.customer(customer_id)
        with self.engine.connect() as conn:
            remaining = {b.id: b.remaining_minor for b in balances(conn, customer_id)}
        with self.store.session() as s:
            rows = s.scalars(
                select(BillingCredit)
                .where(BillingCredit.customer_id == customer_id)
                .order_by(BillingCredit.created_at, BillingCredit.id)
            )
            return [(r, remaining.get(r.id, r.amount_minor)) for r in rows]

    # -- periods, preview, close ------------------------------------------------------------------
    def period(self, customer: BillingCustomer, sub: BillingSubscription, version: Version, at: int) -> Period:
        spec = version.spec
        return period_at(
            at, interval=spec.interval, anchor=spec.anchor, tz=customer.timezone, subscription_start=sub.starts_at
        )

    def _price(
        self,
        customer: BillingCustomer,
        sub: BillingSubscription,
        version: Version,
        period: Period,
        *,
        late: bool = True,
    ) -> Callable[[list[CreditBalance]], dict[str, Any]]:
        """The document of ``period`` as a function of the credits; with ``late``, adjustment lines
        for late usage of the customer's closed periods (:mod:`authz.billing.adjust`)."""
        spec = version.spec
        dims = sorted({"workflow", *(d for c in spec.components for d, _v in c.quantity.filter)})
        prorated = any(c.quantity.source == "seats" and c.quantity.policy == "prorated_days" for c in spec.components)
        usage = customer_usage(
            self.engine,
            customer.id,
            period,
            dims=dims,
            with_agent_days=prorated,
            subscription_id=sub.id,
            with_outcomes=any(c.quantity.when for c in spec.components),
        )
        adjustments: list[dict[str, Any]] = []
        if late:

            def reprice(sub_id: str, version_id: str, closed: Period) -> dict[str, Any]:
                stand_in = BillingSubscription(id=sub_id)
                return self._price(customer, stand_in, self.store.version(version_id), closed, late=False)([])

            with self.engine.connect() as conn:
                adjustments = adjust.adjustments(conn, customer.id, period, reprice)

        def price(credits: list[CreditBalance]) -> dict[str, Any]:
            return preview(
                spec,
                period,
                usage,
                credits,
                customer_id=customer.id,
                plan_version_id=version.id,
                subscription_id=sub.id,
                adjustments=adjustments,
            )

        return price

    def preview(self, customer_id: str, at: int | None = None) -> dict[str, Any]:
        """The invoice preview of the period holding ``at`` (default: now). Changes nothing."""
        customer = self.store.customer(customer_id)
        when = int(self.clock()) if at is None else at
        sub = self.store.subscription_at(customer_id, when)
        version = self.store.version(sub.plan_version_id)
        period = self.period(customer, sub, version, when)
        with self.engine.connect() as conn:
            credits = balances(conn, customer_id, period.end)
        return self._price(customer, sub, version, period)(credits)

    def close(self, customer_id: str, at: int, *, force: bool = False) -> tuple[dict[str, Any], bool]:
        """Finalize the period holding ``at`` (only after its grace period unless ``force``)."""
        customer = self.store.customer(customer_id)
        sub = self.store.subscription_at(customer_id, at)
        version = self.store.version(sub.plan_version_id)
        period = self.period(customer, sub, version, at)
        now = int(self.clock())
        if not force and now < period.end + version.spec.grace_hours * 3600:
            from authz.billing.errors import Conflict

            raise Conflict("the period is still open (or in its grace period); see final_after", "at")
        row, created = close.finalize(
            self.engine, customer, sub.id, period, self._price(customer, sub, version, period), now
        )
        return invoice_json(row), created

    def close_due(self) -> list[tuple[dict[str, Any], bool]]:
        """Finalize every period whose grace period is over and which has no invoice yet."""
        now = int(self.clock())
        out = []
        customers = {c.id: c for c in self.store.customers()}
        with self.engine.connect() as conn:
            done = {(s, int(p)) for s, p in conn.execute(text(DONE))}
        for sub in self.store.all_subscriptions():
            customer = customers.get(sub.customer_id)
            if customer is None:
                continue
            version = self.store.version(sub.plan_version_id)
            grace = version.spec.grace_hours * 3600
            at = sub.starts_at
            while at < (sub.ends_at or now):
                period = self.period(customer, sub, version, at)
                if period.end + grace > now:
                    break
                if (sub.id, period.start) not in done:
                    price = self._price(customer, sub, version, period)
                    row, created = close.finalize(self.engine, customer, sub.id, period, price, now)
                    out.append((invoice_json(row), created))
                at = period.end
        return out

    def value_receipt(
        self, customer_id: str, at: int | None, signer: Signer, issuer: str
    ) -> tuple[str, dict[str, Any]]:
        """A signed summary of the outcomes delivered to the customer in the period holding ``at``."""
        customer = self.store.customer(customer_id)
        when = int(self.clock()) if at is None else at
        sub = self.store.subscription_at(customer_id, when)
        period = self.period(customer, sub, self.store.version(sub.plan_version_id), when)
        with self.engine.connect() as conn:
            row = close.existing(conn, sub.id, period.start)
        items = receipts.outcomes(self.engine, customer_id, period)
        return receipts.seal(
            signer,
            issuer,
            customer_id,
            customer.currency,
            period,
            items,
            None if row is None else row.id,
            int(self.clock()),
        )

    # -- invoices ----------------------------------------------------------------------------------
    def invoices(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        query = select(INVOICES).order_by(INVOICES.c.seq)
        if customer_id:
            query = query.where(INVOICES.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            return [invoice_json(r) for r in conn.execute(query)]

    def recent_invoices(self, customer_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` invoices, newest first (of one customer, or of all): one bounded read."""
        query = select(INVOICES).order_by(INVOICES.c.seq.desc()).limit(limit)
        if customer_id:
            query = query.where(INVOICES.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            return [invoice_json(r) for r in conn.execute(query)]

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(INVOICES).where(INVOICES.c.id == invoice_id)).first()
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}")
        return invoice_json(row)


def invoice_json(row: Any) -> dict[str, Any]:
    doc: dict[str, Any] = dict(row.document)
    doc["number"] = f"INV-{int(row.seq):06d}"
    return doc


CSV_COLUMNS = (
    "invoice",
    "number",
    "customer",
    "period_start",
    "period_end",
    "currency",
    "component",
    "label",
    "group",
    "quantity",
    "amount",
    "cost_usd",
    "margin",
)


def invoice_csv(doc: dict[str, Any]) -> str:
    """One row per line and group (agent), plus credit and total rows; amounts as decimal text."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    head = [
        doc.get("id", ""),
        doc.get("number", ""),
        doc["customer_id"],
        doc["period"]["start"],
        doc["period"]["end"],
        doc["currency"],
    ]
    for line in doc["lines"]:
        w.writerow(
            [
                *head,
                line["component"],
                line["label"],
                "",
                line["quantity"],
                line["amount"],
                line["cost_usd"],
                line.get("margin", ""),
            ]
        )
        if line["group_by"] == "agent":
            for g in line["groups"]:
                w.writerow([*head, line["component"], line["label"], g["key"], g["quantity"], g["amount"], "", ""])
    for c in doc["credits_applied"]:
        w.writerow([*head, "credit", c["credit_id"], "", "", "-" + c["amount"], "", ""])
    w.writerow([*head, "total", "", "", "", doc["total"], doc["cost"]["model_cost_usd"], doc["cost"]["margin"] or ""])
    return out.getvalue()
