"""Outcome rollups by attribute set (plan triggers), hourly and per built billing period.

Revision ID: 0018_billing_outcomes
Revises: 0017_billing_usage
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_billing_outcomes"
down_revision: str | Sequence[str] | None = "0017_billing_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counts() -> list[sa.Column[int]]:
    return [sa.Column("count", sa.BigInteger(), nullable=False), sa.Column("quantity", sa.BigInteger(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "billing_outcome_attrs",
        sa.Column("attrs_key", sa.String(32), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("attrs_key", name="pk_billing_outcome_attrs"),
    )
    op.create_table(
        "billing_outcomes",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("customer", sa.String(255), nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("attrs_key", sa.String(32), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint("bucket", "customer", "agent", "type", "attrs_key", name="pk_billing_outcomes"),
    )
    op.create_index("ix_billing_outcomes_customer_bucket", "billing_outcomes", ["customer", "bucket"])
    op.create_table(
        "billing_usage_outcomes",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("attrs_key", sa.String(32), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint(
            "subscription_id", "period_start", "agent", "type", "attrs_key", name="pk_billing_usage_outcomes"
        ),
    )


def downgrade() -> None:
    op.drop_table("billing_usage_outcomes")
    op.drop_index("ix_billing_outcomes_customer_bucket", table_name="billing_outcomes")
    op.drop_table("billing_outcomes")
    op.drop_table("billing_outcome_attrs")
