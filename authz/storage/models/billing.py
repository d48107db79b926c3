"""Billing tables: customers, plans and their immutable versions, subscriptions, credits,
finalized invoices, the credits they burned, and billing webhook endpoints.

Money is never a float: amounts are exact decimal text (``Decimal(str)`` round-trips) or integer
minor units of the row's currency. Times are integer Unix seconds (UTC), like the core tables.
A plan version's ``spec`` (currency, interval, anchor, grace, components) is written once and never
updated: subscriptions and invoices name the version they used.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class BillingCustomer(Base):
    """A business that is billed. ``id`` is the integrator's own (external) id: events name it."""

    __tablename__ = "billing_customers"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    email: Mapped[str] = mapped_column(String(320), default="")
    credits_low_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # credits.low below this
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class BillingMember(Base):
    """Which customer an agent or a team belongs to (events without ``customer`` are attributed by it)."""

    __tablename__ = "billing_members"
    subject_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # agent | team
    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class BillingPlan(Base):
    __tablename__ = "billing_plans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # caller's code, e.g. "hybrid"
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)


class BillingPlanVersion(Base):
    """One immutable version of a plan: its whole pricing ``spec`` as validated JSON."""

    __tablename__ = "billing_plan_versions"
    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # "{plan}@{version}"
    plan_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))  # of the canonical spec: price provenance on invoices
    created_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("plan_id", "version", name="uq_billing_plan_versions_plan_id"),)


class BillingSubscription(Base):
    """A customer on a plan version from ``starts_at`` (a period boundary) until ``ends_at`` (or open)."""

    __tablename__ = "billing_subscriptions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    plan_version_id: Mapped[str] = mapped_column(String(80))
    starts_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class BillingCredit(Base):
    """A prepaid or promotional grant, burned by finalized invoices in a documented order."""

    __tablename__ = "billing_credits"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    category: Mapped[str] = mapped_column(String(16))  # prepaid | promotional
    priority: Mapped[int] = mapped_column(Integer, default=50)
    effective_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class BillingInvoice(Base):
    """A finalized invoice: written once (unique per subscription and period), never updated."""

    __tablename__ = "billing_invoices"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[str] = mapped_column(String(64))
    plan_version_id: Mapped[str] = mapped_column(String(80))
    period_start: Mapped[int] = mapped_column(BigInteger)
    period_end: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the priced preview it froze, with provenance
    etag: Mapped[str] = mapped_column(String(80))
    finalized_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start", name="uq_billing_invoices_subscription_id"),
        Index("ix_billing_invoices_customer_id_period_start", "customer_id", "period_start"),
    )


class BillingCreditUse(Base):
    """How much of a credit grant one finalized invoice burned (balances = amount - these)."""

    __tablename__ = "billing_credit_uses"
    credit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[int] = mapped_column(BigInteger)


class BillingWebhook(Base):
    """An endpoint for ``invoice.finalized`` and ``credits.low`` (Standard Webhooks; secret encrypted)."""

    __tablename__ = "billing_webhooks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class BillingUsagePeriod(Base):
    """A billing period whose usage is kept in ``billing_usage`` (built once from the metering rollups
    under the flusher's lock; every later flush adds its events to it in the same transaction).

    ``[lo, hi)`` is the range of hour buckets the period reads (its start floored, its end rounded
    up to the hour), the same hours an invoice preview sums from the metering rollups.
    """

    __tablename__ = "billing_usage_periods"
    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_end: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[str] = mapped_column(String(255))
    lo: Mapped[int] = mapped_column(BigInteger)
    hi: Mapped[int] = mapped_column(BigInteger)
    built_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_billing_usage_periods_customer_id_hi", "customer_id", "hi"),)


class BillingUsage(Base):
    """One billing period's usage per dimension tuple (the metering rollups of its hours, summed):
    a month is one row per (agent, event type, dimensions), whatever the period's anchor."""

    __tablename__ = "billing_usage"
    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dims_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the metering rollups' digest
    type: Mapped[str] = mapped_column(String(80))
    agent: Mapped[str] = mapped_column(String(255))
    team: Mapped[str] = mapped_column(String(255))
    workflow: Mapped[str] = mapped_column(String(255))
    mcp_server: Mapped[str] = mapped_column(String(2048))
    tool: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_pusd: Mapped[int] = mapped_column(BigInteger)
    priced: Mapped[int] = mapped_column(BigInteger)
    unpriced: Mapped[int] = mapped_column(BigInteger)


class BillingOutcomeAttrs(Base):
    """One distinct attribute set of outcome events (their ``metadata`` but ``value`` and ``reverses``),
    stored once; the outcome rollups name it by ``attrs_key`` (a digest of its canonical JSON)."""

    __tablename__ = "billing_outcome_attrs"
    attrs_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    attributes: Mapped[str] = mapped_column(Text)  # canonical JSON object


class BillingOutcome(Base):
    """Hourly outcome counts per (customer, agent, outcome type, attribute set): what plan triggers
    (``when: {"qualified": true}``) are evaluated over. A reversal counts under its original's set."""

    __tablename__ = "billing_outcomes"
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hour start, Unix seconds UTC
    customer: Mapped[str] = mapped_column(String(255), primary_key=True)
    agent: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(80), primary_key=True)
    attrs_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_billing_outcomes_customer_bucket", "customer", "bucket"),)


class BillingUsageOutcome(Base):
    """A built billing period's outcome counts per (agent, outcome type, attribute set)."""

    __tablename__ = "billing_usage_outcomes"
    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agent: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(80), primary_key=True)
    attrs_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
