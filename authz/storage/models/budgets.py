"""Budget tables: definitions, the SQL ledger's counters and reservations, the webhook outbox.

Imported at the end of :mod:`authz.storage.models` so the shared metadata (and Alembic's
comparison) sees them. Amounts are integers (tokens, calls or micro-units of a currency); the
ledger's instants are integer Unix **milliseconds** (``*_ms``) because reservation ttls are short;
everything else follows the project convention of integer Unix seconds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class BudgetRow(Base):
    """A budget on one subject (agent, team or workflow)."""

    __tablename__ = "budgets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # agent | team | workflow
    subject_id: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(16))  # tokens | calls | cost
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)  # cost only (ISO 4217)
    period: Mapped[str] = mapped_column(String(16))  # day | week | month | lifetime
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    hard: Mapped[bool] = mapped_column(Boolean, default=True)
    thresholds: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_budgets_subject_type_subject_id", "subject_type", "subject_id"),)


class BudgetWebhookRow(Base):
    """A webhook endpoint of a budget; the Standard Webhooks secret is stored encrypted only."""

    __tablename__ = "budget_webhooks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(64), ForeignKey("budgets.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)


class BudgetUsageRow(Base):
    """The SQL ledger's counters of one budget in one period window (a new window starts at zero)."""

    __tablename__ = "budget_usage"
    budget_id: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (PrimaryKeyConstraint("budget_id", "period_key", name="pk_budget_usage"),)


class BudgetReservationRow(Base):
    """A reservation across every budget of one use (all or none); ``items`` = [[budget, window, amount], ...]."""

    __tablename__ = "budget_reservations"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the caller's request id
    state: Mapped[str] = mapped_column(String(16))  # active | settled | released
    items: Mapped[list[list[str | int]]] = mapped_column(JSON)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_budget_reservations_state_expires_at_ms", "state", "expires_at_ms"),)


class BudgetReservationItemRow(Base):
    """One budget's share of a reservation; ``counted`` while it is part of ``budget_usage.reserved``."""

    __tablename__ = "budget_reservation_items"
    reservation_id: Mapped[str] = mapped_column(String(128))
    budget_id: Mapped[str] = mapped_column(String(64))
    period_key: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    counted: Mapped[bool] = mapped_column(Boolean)
    __table_args__ = (
        PrimaryKeyConstraint("reservation_id", "budget_id", name="pk_budget_reservation_items"),
        Index("ix_budget_reservation_items_window", "budget_id", "period_key", "counted", "expires_at_ms"),
    )


class BudgetPendingUsageRow(Base):
    """Soft-budget spend recorded while the ledger was unreachable, applied later by reconciliation."""

    __tablename__ = "budget_pending_usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    budget_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    applied_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (UniqueConstraint("request_id", "budget_id", name="uq_budget_pending_usage_request"),)


class WebhookOutboxRow(Base):
    """A durable webhook event: one per (budget, period window, threshold, endpoint)."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)  # the webhook-id header
    budget_id: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[int] = mapped_column(Integer)
    period_key: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at_ms: Mapped[int] = mapped_column(BigInteger)
    claimed_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    delivered_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        UniqueConstraint("budget_id", "period_key", "threshold", "endpoint_id", name="uq_webhook_outbox_event"),
        Index("ix_webhook_outbox_state_next_attempt_at_ms", "state", "next_attempt_at_ms"),
    )


class WebhookDeliveryRow(Base):
    """One delivery attempt of an outbox event (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhook_outbox.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
