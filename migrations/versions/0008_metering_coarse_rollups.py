"""Metering: daily and monthly rollups beside the hourly ones, so coarse usage queries read fewer rows.

The flusher updates all three in the transaction that inserts the events. The upgrade fills the new
tables from ``metering_rollups`` (sums per day or month of its hourly rows).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
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
SUMS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_ms",
    "cost_pusd",
    "priced",
    "unpriced",
)


def _create(name: str, key: str, extra: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.BigInteger(), nullable=False),
        sa.Column("dims_key", sa.String(64), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in extra),
        *(sa.Column(c, sa.String(size), nullable=False) for c, size in DIMS),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in SUMS),
        sa.PrimaryKeyConstraint(key, "dims_key", name=f"pk_{name}"),
    )
    keep = ", ".join((key, "dims_key", *extra, *(c for c, _ in DIMS)))
    sums = ", ".join(f"sum({c})" for c in SUMS)
    op.execute(
        f"INSERT INTO {name} ({keep}, {', '.join(SUMS)}) "  # noqa: S608 (names are the constants above)
        f"SELECT {keep}, {sums} FROM metering_rollups GROUP BY {keep}"
    )


def upgrade() -> None:
    _create("metering_rollups_daily", "day", ("month",))
    _create("metering_rollups_monthly", "month", ())


def downgrade() -> None:
    op.drop_table("metering_rollups_monthly")
    op.drop_table("metering_rollups_daily")
