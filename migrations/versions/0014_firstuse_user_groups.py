"""Users belong to groups: the ``Authz::Group`` parents scope policies see for a signed-in user.

Revision ID: 0010_firstuse
Revises: 0016_dpop
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_firstuse"
down_revision: str | Sequence[str] | None = "0016_dpop"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("groups", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("groups")
