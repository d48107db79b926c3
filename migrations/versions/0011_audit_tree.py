"""Audit log Merkle tree: leaf index per record, complete subtree hashes, signed checkpoints, pseudonyms.

Records written before this revision keep only their hash chain (``leaf_index`` NULL); the tree
starts with the first record written after it.

Revision ID: 0015_audit_tree
Revises: 0014_licensing
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_audit_tree"
down_revision: str | Sequence[str] | None = "0014_licensing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("leaf_index", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint("uq_audit_events_leaf_index", ["leaf_index"])
    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_audit_tree_nodes"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size", name="pk_audit_checkpoints"),
    )
    op.create_table(
        "subject_pseudonyms",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_pseudonyms"),
        sa.UniqueConstraint("pseudonym", name="uq_subject_pseudonyms_pseudonym"),
    )


def downgrade() -> None:
    op.drop_table("subject_pseudonyms")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree_nodes")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_leaf_index", type_="unique")
        batch.drop_column("leaf_index")
