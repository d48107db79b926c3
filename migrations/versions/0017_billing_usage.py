"""Billing usage per period: each billing period's usage summed once, kept current by the flusher.

Revision ID: 0017_billing_usage
Revises: 0015b_compliance
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_billing_usage"
down_revision: str | Sequence[str] | None = "0015b_compliance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = (
    ("type", 80),
    ("agent", 255),
    ("team", 255),
    ("workflow", 255),
    ("mcp_server", 2048),
    ("tool", 255),
    ("provider", 64),
    ("model", 255),
    ("unit", 32),
)
SUMS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_pusd",
    "priced",
    "unpriced",
)


def upgrade() -> None:
    op.create_table(
        "billing_usage_periods",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("lo", sa.BigInteger(), nullable=False),
        sa.Column("hi", sa.BigInteger(), nullable=False),
        sa.Column("built_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "period_start", name="pk_billing_usage_periods"),
    )
    op.create_index("ix_billing_usage_periods_customer_id_hi", "billing_usage_periods", ["customer_id", "hi"])
    op.create_table(
        "billing_usage",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("dims_key", sa.String(64), nullable=False),
        *(sa.Column(name, sa.String(size), nullable=False) for name, size in DIMS),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS),
        sa.PrimaryKeyConstraint("subscription_id", "period_start", "dims_key", name="pk_billing_usage"),
    )


def downgrade() -> None:
    op.drop_table("billing_usage")
    op.drop_index("ix_billing_usage_periods_customer_id_hi", table_name="billing_usage_periods")
    op.drop_table("billing_usage_periods")
