"""EU AI Act records: human-oversight rules and approvals, per-agent AI Act facts, incidents.

Revision ID: 0020_governance
Revises: 0019_audit_lines
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_governance"
down_revision: str | Sequence[str] | None = "0019_audit_lines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_rules",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("tool", sa.String(255), nullable=False),
        sa.Column("min_risk", sa.String(16), nullable=True),
        sa.Column("ttl", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approval_rules"),
        sa.UniqueConstraint("resource", "tool", name="uq_approval_rules_resource"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("tool", sa.String(255), nullable=False),
        sa.Column("args_sha256", sa.String(64), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_agent", "approvals", ["agent", "resource", "tool", "args_sha256"])
    op.create_index("ix_approvals_status", "approvals", ["status", "expires_at"])
    op.create_table(
        "agent_ai_act",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("annex_iii_area", sa.String(64), nullable=True),
        sa.Column("intended_purpose", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("deployer", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agent_ai_act"),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agents", sa.JSON(), nullable=False),
        sa.Column("seq_from", sa.BigInteger(), nullable=True),
        sa.Column("seq_to", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("aware_at", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.BigInteger(), nullable=True),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("opened_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_table("agent_ai_act")
    op.drop_index("ix_approvals_status", table_name="approvals")
    op.drop_index("ix_approvals_agent", table_name="approvals")
    op.drop_table("approvals")
    op.drop_table("approval_rules")
