"""Audit records keep the RFC 8785 line their Merkle leaf hashes (exports copy it instead of
re-serialising each record); records written before keep NULL and are serialised when read.

Revision ID: 0019_audit_lines
Revises: 0018_billing_outcomes
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_audit_lines"
down_revision: str | Sequence[str] | None = "0018_billing_outcomes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("line", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("line")
