"""Shared Signals (SSF) transmitter: event streams of registered resource servers and the SET outbox.

Revision ID: 0012_ssf
Revises: 0015_audit_tree
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_ssf"
down_revision: str | Sequence[str] | None = "0015_audit_tree"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(512), nullable=False),
        sa.Column("audience", sa.String(2048), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("events_requested", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name="pk_ssf_streams"),
    )
    op.create_index("ix_ssf_streams_client_id", "ssf_streams", ["client_id"])
    op.create_table(
        "ssf_outbox",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("source_seq", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["ssf_streams.stream_id"],
            name="fk_ssf_outbox_stream_id_ssf_streams",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ssf_outbox"),
        sa.UniqueConstraint("stream_id", "source_seq", "event_type", name="uq_ssf_outbox_source"),
    )
    op.create_index("ix_ssf_outbox_stream_jti", "ssf_outbox", ["stream_id", "jti"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_ssf_outbox_stream_jti", table_name="ssf_outbox")
    op.drop_table("ssf_outbox")
    op.drop_index("ix_ssf_streams_client_id", table_name="ssf_streams")
    op.drop_table("ssf_streams")
