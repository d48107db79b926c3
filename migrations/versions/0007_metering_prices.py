"""Metering: price provenance stored once per distinct price (``metering_prices``), not per event.

Events keep their exact cost and gain ``price_id``; the per-event ``price`` JSON goes. The upgrade
moves existing provenance: each old record's price part (source, version, provider_id, model_id,
rates_per_mtok) becomes a ``metering_prices`` row under the same digest new events use
(``authz.metering.pricing``); the per-event parts (model_ref, input_usd, output_usd, exact_in_pusd)
are derivable from the event's counts and the rates. The downgrade restores the records from the
price rows (without those per-event parts).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRICE_KEYS = ("source", "version", "provider_id", "model_id", "rates_per_mtok")
EVENTS = sa.table(
    "metering_events",
    sa.column("idempotency_id", sa.String),
    sa.column("received_at_ms", sa.BigInteger),
    sa.column("price", sa.JSON),
    sa.column("price_id", sa.String),
)
PRICES = sa.table(
    "metering_prices",
    sa.column("price_id", sa.String),
    sa.column("record", sa.JSON),
    sa.column("first_seen_ms", sa.BigInteger),
)


def _price_id(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def upgrade() -> None:
    op.create_table(
        "metering_prices",
        sa.Column("price_id", sa.String(32), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("price_id", name="pk_metering_prices"),
    )
    op.add_column("metering_events", sa.Column("price_id", sa.String(32), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(EVENTS.c.idempotency_id, EVENTS.c.received_at_ms, EVENTS.c.price)).all()
    prices: dict[str, tuple[dict[str, Any], int]] = {}
    for event_id, received_at_ms, price in rows:
        if not price:
            continue
        record = {k: price[k] for k in PRICE_KEYS if k in price}
        price_id = _price_id(record)
        first = prices.get(price_id)
        prices[price_id] = (record, min(received_at_ms, first[1]) if first else received_at_ms)
        conn.execute(sa.update(EVENTS).where(EVENTS.c.idempotency_id == event_id).values(price_id=price_id))
    if prices:
        conn.execute(
            sa.insert(PRICES), [{"price_id": k, "record": r, "first_seen_ms": t} for k, (r, t) in prices.items()]
        )
    with op.batch_alter_table("metering_events") as batch:  # SQLite rebuilds the table; PostgreSQL drops in place
        batch.drop_column("price")


def downgrade() -> None:
    op.add_column("metering_events", sa.Column("price", sa.JSON(), nullable=True))
    conn = op.get_bind()
    for price_id, record in conn.execute(sa.select(PRICES.c.price_id, PRICES.c.record)).all():
        conn.execute(sa.update(EVENTS).where(EVENTS.c.price_id == price_id).values(price=record))
    with op.batch_alter_table("metering_events") as batch:
        batch.drop_column("price_id")
    op.drop_table("metering_prices")
