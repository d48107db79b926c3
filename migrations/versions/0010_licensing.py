"""License keys: products, license policies, licenses, machines, signing keys, webhooks, rate limits;
``agents.owner_license_id`` (the license that pays for an agent).

Revision ID: 0014_licensing
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_licensing"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "license_products",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_license_products"),
        sa.UniqueConstraint("code", name="uq_license_products_code"),
    )
    op.create_table(
        "license_policies",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=True),
        sa.Column("expiration_strategy", sa.String(16), nullable=False),
        sa.Column("entitlements", sa.JSON(), nullable=False),
        sa.Column("max_machines", sa.Integer(), nullable=True),
        sa.Column("heartbeat_interval", sa.Integer(), nullable=True),
        sa.Column("cull_strategy", sa.String(16), nullable=False),
        sa.Column("resurrection_window", sa.Integer(), nullable=False),
        sa.Column("checkout_ttl", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_license_policies"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["license_products.id"], name="fk_license_policies_product_id_license_products"
        ),
    )
    op.create_index("ix_license_policies_product_id", "license_policies", ["product_id"])
    op.create_table(
        "licenses",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_digest", sa.String(128), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("entitlements", sa.JSON(), nullable=False),
        sa.Column("max_machines", sa.Integer(), nullable=True),
        sa.Column("owner_user_id", sa.String(64), nullable=True),
        sa.Column("owner_customer", sa.String(128), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("status_changed_at", sa.BigInteger(), nullable=False),
        sa.Column("expiring_notified_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_licenses"),
        sa.UniqueConstraint("key_digest", name="uq_licenses_key_digest"),
        sa.ForeignKeyConstraint(
            ["product_id"], ["license_products.id"], name="fk_licenses_product_id_license_products"
        ),
        sa.ForeignKeyConstraint(["policy_id"], ["license_policies.id"], name="fk_licenses_policy_id_license_policies"),
    )
    op.create_index("ix_licenses_product_id", "licenses", ["product_id"])
    op.create_index("ix_licenses_policy_id", "licenses", ["policy_id"])
    op.create_index("ix_licenses_owner_user_id", "licenses", ["owner_user_id"])
    op.create_index("ix_licenses_owner_customer", "licenses", ["owner_customer"])
    op.create_index("ix_licenses_created_at_id", "licenses", ["created_at", "id"])
    op.create_table(
        "license_machines",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("license_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_heartbeat_at", sa.BigInteger(), nullable=True),
        sa.Column("dead_notified_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_license_machines"),
        sa.UniqueConstraint("license_id", "fingerprint", name="uq_license_machines_license_fingerprint"),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name="fk_license_machines_license_id_licenses", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_license_machines_license_id", "license_machines", ["license_id"])
    op.create_table(
        "license_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_license_signing_keys"),
    )
    op.create_table(
        "license_webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_license_webhooks"),
    )
    op.create_table(
        "license_rate_limits",
        sa.Column("bucket", sa.String(160), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name="pk_license_rate_limits"),
    )
    op.add_column("agents", sa.Column("owner_license_id", sa.String(64), nullable=True))
    op.create_index("ix_agents_owner_license_id", "agents", ["owner_license_id"])


def downgrade() -> None:
    op.drop_index("ix_agents_owner_license_id", table_name="agents")
    with op.batch_alter_table("agents") as batch:  # SQLite rebuilds the table
        batch.drop_column("owner_license_id")
    op.drop_table("license_rate_limits")
    op.drop_table("license_webhooks")
    op.drop_table("license_signing_keys")
    op.drop_table("license_machines")
    op.drop_table("licenses")
    op.drop_table("license_policies")
    op.drop_table("license_products")
