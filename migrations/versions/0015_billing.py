"""Billing: customers and their agents/teams, plans with immutable versions, subscriptions,
credits, finalized invoices and the credits they burned, billing webhook endpoints; rollup indexes
by customer for invoice previews.

Revision ID: 0013_billing
Revises: 0010_firstuse
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_billing"
down_revision: str | Sequence[str] | None = "0010_firstuse"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUP_INDEXES = (
    ("ix_metering_rollups_customer", "metering_rollups", ["customer", "bucket"]),
    ("ix_metering_rollups_daily_customer", "metering_rollups_daily", ["customer", "day"]),
    ("ix_metering_rollups_monthly_customer", "metering_rollups_monthly", ["customer", "month"]),
)


def upgrade() -> None:
    op.create_table(
        "billing_customers",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("credits_low_minor", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_customers"),
    )
    op.create_table(
        "billing_members",
        sa.Column("subject_type", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject_type", "subject_id", name="pk_billing_members"),
    )
    op.create_index("ix_billing_members_customer_id", "billing_members", ["customer_id"])
    op.create_table(
        "billing_plans",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_plans"),
    )
    op.create_table(
        "billing_plan_versions",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_plan_versions"),
        sa.UniqueConstraint("plan_id", "version", name="uq_billing_plan_versions_plan_id"),
    )
    op.create_table(
        "billing_subscriptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("plan_version_id", sa.String(80), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_subscriptions"),
    )
    op.create_index("ix_billing_subscriptions_customer_id", "billing_subscriptions", ["customer_id"])
    op.create_table(
        "billing_credits",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("effective_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_credits"),
    )
    op.create_index("ix_billing_credits_customer_id", "billing_credits", ["customer_id"])
    op.create_table(
        "billing_invoices",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("plan_version_id", sa.String(80), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("credits_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("finalized_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_billing_invoices"),
        sa.UniqueConstraint("id", name="uq_billing_invoices_id"),
        sa.UniqueConstraint("subscription_id", "period_start", name="uq_billing_invoices_subscription_id"),
    )
    op.create_index("ix_billing_invoices_customer_id_period_start", "billing_invoices", ["customer_id", "period_start"])
    op.create_table(
        "billing_credit_uses",
        sa.Column("credit_id", sa.String(64), nullable=False),
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("credit_id", "invoice_id", name="pk_billing_credit_uses"),
    )
    op.create_table(
        "billing_webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_webhooks"),
    )
    for name, table, columns in ROLLUP_INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in ROLLUP_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("billing_webhooks")
    op.drop_table("billing_credit_uses")
    op.drop_index("ix_billing_invoices_customer_id_period_start", table_name="billing_invoices")
    op.drop_table("billing_invoices")
    op.drop_index("ix_billing_credits_customer_id", table_name="billing_credits")
    op.drop_table("billing_credits")
    op.drop_index("ix_billing_subscriptions_customer_id", table_name="billing_subscriptions")
    op.drop_table("billing_subscriptions")
    op.drop_table("billing_plan_versions")
    op.drop_table("billing_plans")
    op.drop_index("ix_billing_members_customer_id", table_name="billing_members")
    op.drop_table("billing_members")
    op.drop_table("billing_customers")
