"""Metering inbox keyed by the idempotency id: no sequence column, one index fewer per event.

Every acknowledged event inserts one inbox row, so each index on it is paid per event: the ``seq``
primary key (and its sequence) only ordered the flusher's reads, which the pending index now does
by ``received_at_ms``. The unique constraint on ``idempotency_id`` becomes the primary key. Rows
(pending or within the dedupe window) are kept; the downgrade numbers them again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("flushed_at_ms IS NULL")


def upgrade() -> None:
    op.drop_index("ix_metering_inbox_pending", table_name="metering_inbox")
    with op.batch_alter_table("metering_inbox") as batch:  # SQLite rebuilds the table
        batch.drop_constraint("uq_metering_inbox_idempotency_id", type_="unique")
        batch.drop_constraint("pk_metering_inbox", type_="primary")
        batch.drop_column("seq")
        batch.create_primary_key("pk_metering_inbox", ["idempotency_id"])
    op.create_index(
        "ix_metering_inbox_pending",
        "metering_inbox",
        ["received_at_ms"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_metering_inbox_pending", table_name="metering_inbox")
    if op.get_bind().dialect.name == "postgresql":  # BIGSERIAL numbers the kept rows, as 0005 created it
        op.drop_constraint("pk_metering_inbox", "metering_inbox", type_="primary")
        op.execute("ALTER TABLE metering_inbox ADD COLUMN seq BIGSERIAL NOT NULL")
        op.create_primary_key("pk_metering_inbox", "metering_inbox", ["seq"])
        op.create_unique_constraint("uq_metering_inbox_idempotency_id", "metering_inbox", ["idempotency_id"])
    else:  # the rebuilt table's INTEGER PRIMARY KEY numbers the copied rows
        with op.batch_alter_table("metering_inbox", recreate="always") as batch:
            batch.drop_constraint("pk_metering_inbox", type_="primary")
            batch.add_column(sa.Column("seq", sa.Integer(), nullable=False))
            batch.create_primary_key("pk_metering_inbox", ["seq"])
            batch.create_unique_constraint("uq_metering_inbox_idempotency_id", ["idempotency_id"])
    op.create_index(
        "ix_metering_inbox_pending", "metering_inbox", ["seq"], sqlite_where=PENDING, postgresql_where=PENDING
    )
