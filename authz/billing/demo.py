"""``authz demo``'s money: the demo agent's events billed to a customer on the hybrid plan."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from authz.billing.errors import NotFound
from authz.billing.examples import SHAPES
from authz.billing.service import BillingService
from authz.core.crypto import Keyring

CUSTOMER = "demo-customer"


def seed(engine: Engine, keyring: Keyring, agent_id: str) -> str:
    """Idempotent: the ``hybrid`` plan, customer ``demo-customer`` (USD) owning the demo agent,
    subscribed since the start of this month. Returns the customer id."""
    svc = BillingService(engine, keyring)
    try:
        svc.store.version("hybrid")
    except NotFound:
        svc.store.create_plan(
            "hybrid", "Hybrid: $199/mo + $0.80/meeting + $0.40/1M tokens above 10M per agent", SHAPES["hybrid"]
        )
    if CUSTOMER not in svc.store.customer_ids():
        svc.create_customer(id=CUSTOMER, name="Demo Customer", currency="USD")
    svc.assign(CUSTOMER, "agent", agent_id)
    if not svc.store.subscriptions(CUSTOMER):
        now = datetime.fromtimestamp(time.time(), UTC)
        svc.store.subscribe(CUSTOMER, "hybrid", int(datetime(now.year, now.month, 1, tzinfo=UTC).timestamp()))
    return CUSTOMER


def hint(data_dir: Path) -> str:
    return (
        "  # 6. Money: the demo agent's usage is billed to demo-customer on the hybrid plan; its invoice so far:\n"
        f"  AUTHZ_DATA_DIR={data_dir} authz billing preview {CUSTOMER}\n"
    )
