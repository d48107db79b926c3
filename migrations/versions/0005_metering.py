"""Metering: the SQL staging inbox (buffer + dedupe window), counted events, hourly rollups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = (
    ("type", 80),
    ("agent", 255),
    ("team", 255),
    ("workflow", 255),
    ("customer", 255),
    ("mcp_server", 2048),
    ("tool", 255),
    ("provider", 64),
    ("model", 255),
    ("unit", 32),
)
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def upgrade() -> None:
    op.create_table(
        "metering_inbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("idempotency_id", sa.String(200), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("flushed_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_metering_inbox"),
        sa.UniqueConstraint("idempotency_id", name="uq_metering_inbox_idempotency_id"),
    )
    op.create_index("ix_metering_inbox_received_at_ms", "metering_inbox", ["received_at_ms"])
    op.create_index(
        "ix_metering_inbox_pending",
        "metering_inbox",
        ["seq"],
        sqlite_where=sa.text("flushed_at_ms IS NULL"),
        postgresql_where=sa.text("flushed_at_ms IS NULL"),
    )
    op.create_table(
        "metering_events",
        sa.Column("idempotency_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.String(size), nullable=False) for name, size in DIMS if name not in ("type",)),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOKENS),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("latency_ms", sa.BigInteger(), nullable=True),
        sa.Column("cost_usd", sa.String(64), nullable=True),
        sa.Column("cost_pusd", sa.BigInteger(), nullable=True),
        sa.Column("cost_reason", sa.String(255), nullable=True),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("flushed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_id", name="pk_metering_events"),
    )
    op.create_index("ix_metering_events_occurred_at_ms", "metering_events", ["occurred_at_ms"])
    op.create_table(
        "metering_rollups",
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("dims_key", sa.String(64), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.String(size), nullable=False) for name, size in DIMS),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOKENS),
        sa.Column("latency_ms", sa.BigInteger(), nullable=False),
        sa.Column("cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("priced", sa.BigInteger(), nullable=False),
        sa.Column("unpriced", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "dims_key", name="pk_metering_rollups"),
    )


def downgrade() -> None:
    op.drop_table("metering_rollups")
    op.drop_index("ix_metering_events_occurred_at_ms", table_name="metering_events")
    op.drop_table("metering_events")
    op.drop_index("ix_metering_inbox_pending", table_name="metering_inbox")
    op.drop_index("ix_metering_inbox_received_at_ms", table_name="metering_inbox")
    op.drop_table("metering_inbox")
