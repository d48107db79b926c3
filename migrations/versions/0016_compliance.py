"""GDPR: per-subject data-encryption keys and encrypted profiles (erasure destroys the key).

Revision ID: 0015b_compliance
Revises: 0013_billing
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015b_compliance"
down_revision: str | Sequence[str] | None = "0013_billing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_keys"),
    )
    op.create_table(
        "subject_profiles",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_profiles"),
    )


def downgrade() -> None:
    op.drop_table("subject_profiles")
    op.drop_table("subject_keys")
