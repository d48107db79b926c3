"""DPoP (RFC 9449): authorization codes and refresh tokens remember the key they are bound to.

``authorization_codes.dpop_jkt`` is the ``dpop_jkt`` of the authorization request (RFC 9449 §10:
the code is redeemed only with a proof by that key); ``refresh_tokens.dpop_jkt`` binds a public
client's refresh token to its proof key (RFC 9449 §5). Both nullable: unbound rows stay as they are.

Revision ID: 0016_dpop
Revises: 0012_ssf
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_dpop"
down_revision: str | Sequence[str] | None = "0012_ssf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("authorization_codes", sa.Column("dpop_jkt", sa.String(64), nullable=True))
    op.add_column("refresh_tokens", sa.Column("dpop_jkt", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
