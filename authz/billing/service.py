"""The billing service: the one API the admin REST routes, the CLI and the console call.

``BillingService(engine, keyring, audit=...)`` wraps the store (customers, plans, subscriptions,
credits), the pure preview over rollups, closing periods into invoices, webhooks and value receipts.
Metering asks it, per ingested event, which customer an agent belongs to (:meth:`attribute`).

Every change an operator makes goes through one method here, whatever the surface (``/api/v1``, the
console, the CLI): it validates (the same errors everywhere), writes, and, given an ``actor``,
leaves one operator-change audit record (``customer.created``, ``customer.member_added``,
``plan.created``, ``plan.version_added``, ``subscription.created``, ``credit.granted``,
``invoice.finalized``, ``billing_webhook.created`` / ``.deleted``; a value receipt is a
``billing.value_receipt`` record). ``actor`` None: an internal call (the demo seed), not recorded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, Table, select, text

from authz.billing import adjust, close, receipts
from authz.billing.credits import balances
from authz.billing.errors import Conflict, NotFound
from authz.billing.periods import Period, period_at
from authz.billing.preview import CreditBalance, document, json_with_etag
from authz.billing.store import BillingStore, Version
from authz.billing.usage import Prefetched, customer_usage
from authz.billing.usage_rows import sums_read
from authz.billing.webhooks import BillingWebhooks, Endpoint
from authz.core.crypto import Keyring
from authz.oauth.jws import Signer
from authz.storage.models.billing import BillingCredit, BillingCustomer, BillingInvoice, BillingSubscription

if TYPE_CHECKING:
    from authz.audit.log import AuditLog

ATTRIBUTION_TTL = 2.0  # seconds an agent -> customer map is reused before it is read again
INVOICES = cast(Table, BillingInvoice.__table__)
DONE = "SELECT subscription_id, period_start FROM billing_invoices"


class BillingService:
    def __init__(
        self,
        engine: Engine,
        keyring: Keyring,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.clock = clock
        self.audit = audit
        self.close_batch = close.BATCH  # invoices per transaction in close_due
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

    # -- records (operator changes: validated, written, audited here for every surface) -------------
    def _changed(self, actor: str | None, kind: str, action: str, target: str, **detail: Any) -> None:
        if self.audit is not None and actor is not None:
            self.audit.operator_change(kind, action, actor=actor, target=target, **detail)

    def create_customer(
        self, *, actor: str | None = None, agents: Sequence[str] = (), teams: Sequence[str] = (), **fields: Any
    ) -> BillingCustomer:
        """A customer, billed for ``agents`` and ``teams`` (every member checked before anything is written)."""
        agent_ids = [self.store.member_id("agent", a, f"agents.{i}") for i, a in enumerate(agents)]
        team_ids = [self.store.member_id("team", t, f"teams.{i}") for i, t in enumerate(teams)]
        row = self.store.create_customer(**fields)
        for kind, ids in (("agent", agent_ids), ("team", team_ids)):
            for member in ids:
                self.store.assign(row.id, kind, member)
        self.invalidate()
        self._changed(actor, "customer", "created", row.id, currency=row.currency, agents=agent_ids or None,
                      teams=team_ids or None)  # fmt: skip
        return row

    def assign(self, customer_id: str, subject_type: str, subject_id: str, *, actor: str | None = None) -> str:
        """Bill an agent's (or a team's agents') future events to the customer; a team by id or name.
        Returns the member's id."""
        self.store.customer(customer_id)
        member = self.store.member_id(subject_type, subject_id)
        self.store.assign(customer_id, subject_type, member)
        self.invalidate()
        self._changed(actor, "customer", "member_added", customer_id, **{subject_type: member})
        return member

    def create_plan(self, plan_id: str, name: str, spec: Any, *, actor: str | None = None) -> Version:
        v = self.store.create_plan(plan_id, name, spec)
        self._changed(actor, "plan", "created", v.plan_id, version=v.version, sha256=v.sha256)
        return v

    def add_version(self, plan_id: str, spec: Any, *, actor: str | None = None) -> Version:
        v = self.store.add_version(plan_id, spec)
        self._changed(actor, "plan", "version_added", v.plan_id, version=v.version, sha256=v.sha256)
        return v

    def subscribe(
        self, customer_id: str, plan: str, starts_at: int | None = None, *, actor: str | None = None
    ) -> BillingSubscription:
        sub = self.store.subscribe(customer_id, plan, starts_at)
        self._changed(actor, "subscription", "created", sub.id, customer=sub.customer_id,
                      plan_version=sub.plan_version_id, starts_at=sub.starts_at)  # fmt: skip
        return sub

    def grant(self, customer_id: str, amount: object, *, actor: str | None = None, **options: Any) -> BillingCredit:
        """Grant credit (options: category, priority, effective_at, expires_at, description)."""
        row = self.store.grant(customer_id, amount, **options)
        self._changed(actor, "credit", "granted", row.id, customer=row.customer_id, amount_minor=row.amount_minor,
                      currency=row.currency, category=row.category)  # fmt: skip
        return row

    def add_webhook(
        self, url: str, secret: str | None = None, description: str = "", *, actor: str | None = None
    ) -> Endpoint:
        ep = self.webhooks.add(url, secret, description)
        self._changed(actor, "billing_webhook", "created", ep.id)
        return ep

    def remove_webhook(self, endpoint_id: str, *, actor: str | None = None) -> bool:
        removed = self.webhooks.remove(endpoint_id)
        if removed:
            self._changed(actor, "billing_webhook", "deleted", endpoint_id)
        return removed

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
    ) -> close.Price:
        """The document of ``period`` as a function of (a connection to read the usage on, the
        credits): :meth:`_document` without its JSON text."""
        priced = self._document(customer, sub, version, period, late=late)

        def price(conn: Connection, credits: list[CreditBalance], known: Prefetched | None = None) -> dict[str, Any]:
            return priced(conn, credits, known)[0]

        return price

    def _document(
        self,
        customer: BillingCustomer,
        sub: BillingSubscription,
        version: Version,
        period: Period,
        *,
        late: bool = True,
    ) -> Callable[[Connection, list[CreditBalance], Prefetched | None], tuple[dict[str, Any], str]]:
        """The document of ``period`` and its canonical JSON without ``etag`` (:func:`document`) as a
        function of (a connection to read the usage on, the credits, a batch's reads); with ``late``,
        adjustment lines for late usage of the customer's closed periods (:mod:`authz.billing.adjust`)."""
        spec = version.spec
        dims = sorted({"workflow", *(d for c in spec.components for d, _v in c.quantity.filter)})
        sums = sums_read(spec.components)
        prorated = any(c.quantity.source == "seats" and c.quantity.policy == "prorated_days" for c in spec.components)
        outcomes = any(c.quantity.when for c in spec.components)

        def price(
            conn: Connection, credits: list[CreditBalance], known: Prefetched | None
        ) -> tuple[dict[str, Any], str]:
            usage = customer_usage(
                conn,
                customer.id,
                period,
                dims=dims,
                sums=sums,
                with_agent_days=prorated,
                subscription_id=sub.id,
                with_outcomes=outcomes,
                known=known,
            )
            adjustments: list[dict[str, Any]] = []
            if late and (known is None or customer.id in known.invoiced):

                def reprice(sub_id: str, version_id: str, closed: Period) -> dict[str, Any]:
                    stand_in = BillingSubscription(id=sub_id)
                    return self._price(customer, stand_in, self.store.version(version_id), closed, late=False)(conn, [])

                adjustments = adjust.adjustments(conn, customer.id, period, reprice)
            return document(
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
        return self.preview_json(customer_id, at)[0]

    def preview_json(self, customer_id: str, at: int | None = None) -> tuple[dict[str, Any], str]:
        """:meth:`preview` and its JSON text (the ETag included), the document encoded once."""
        customer = self.store.customer(customer_id)
        when = int(self.clock()) if at is None else at
        sub = self.store.subscription_at(customer_id, when)
        version = self.store.version(sub.plan_version_id)
        period = self.period(customer, sub, version, when)
        with self.engine.connect() as conn:
            credits = balances(conn, customer_id, period.end)
            doc, body = self._document(customer, sub, version, period)(conn, credits, None)
        return doc, json_with_etag(body, doc["etag"])

    def close(
        self, customer_id: str, at: int, *, force: bool = False, actor: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Finalize the period holding ``at`` (only after its grace period unless ``force``); the
        ``invoice.finalized`` record when this call created the invoice."""
        customer = self.store.customer(customer_id)
        sub = self.store.subscription_at(customer_id, at)
        version = self.store.version(sub.plan_version_id)
        period = self.period(customer, sub, version, at)
        now = int(self.clock())
        if not force and now < period.end + version.spec.grace_hours * 3600:
            raise Conflict("the period is still open (or in its grace period); see final_after", "at")
        due = close.Due(customer, sub.id, period, self._price(customer, sub, version, period))
        row, created = close.finalize(self.engine, due, now)
        doc = invoice_json(row)
        if created:
            self._changed(actor, "invoice", "finalized", doc["id"], customer=customer_id, number=doc["number"],
                          total=doc["total"], currency=doc["currency"], forced=force or None)  # fmt: skip
        return doc, created

    def close_due(self) -> list[tuple[dict[str, Any], bool]]:
        """Finalize every period whose grace period is over and which has no invoice yet (in batches:
        :func:`authz.billing.close.finalize_many`)."""
        now = int(self.clock())
        customers = {c.id: c for c in self.store.customers()}
        with self.engine.connect() as conn:
            done = {(s, int(p)) for s, p in conn.execute(text(DONE))}
        due: list[close.Due] = []
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
                    due.append(close.Due(customer, sub.id, period, self._price(customer, sub, version, period)))
                at = period.end
        return [
            (invoice_json(row), created)
            for row, created in close.finalize_many(self.engine, due, now, self.close_batch)
        ]

    def value_receipt(
        self, customer_id: str, at: int | None, signer: Signer, issuer: str, *, actor: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A signed summary of the outcomes delivered to the customer in the period holding ``at``. In
        the audit log's transparency tree (a ``billing.value_receipt`` record with the receipt's
        digest), so a receipt shown later can be checked against what the server issued."""
        customer = self.store.customer(customer_id)
        when = int(self.clock()) if at is None else at
        sub = self.store.subscription_at(customer_id, when)
        period = self.period(customer, sub, self.store.version(sub.plan_version_id), when)
        with self.engine.connect() as conn:
            row = close.existing(conn, sub.id, period.start)
        items = receipts.outcomes(self.engine, customer_id, period)
        token, claims = receipts.seal(
            signer,
            issuer,
            customer_id,
            customer.currency,
            period,
            items,
            None if row is None else row.id,
            int(self.clock()),
        )
        if self.audit is not None and actor is not None:
            self.audit.record(
                "billing.value_receipt",
                resource=claims["sub"],
                actor=actor,
                jti=claims["jti"],
                receipt_sha256=hashlib.sha256(token.encode()).hexdigest(),
                period_start=claims["period"]["start"],
                value_total=claims["value_total"],
            )
        return token, claims

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
