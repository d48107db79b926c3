"""Builds the budget and metering services from settings (SQL by default, Redis when configured).

Kept apart from ``authz.app`` so the CLI and tests can build the same services without an app.
"""

from __future__ import annotations

from sqlalchemy import Engine

from authz.budgets.ledger import Ledger
from authz.budgets.service import BudgetService
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore
from authz.budgets.webhooks import Outbox, WebhookWorker
from authz.crypto import Keyring
from authz.metering import MeteringService, service_from_settings
from authz.settings import Settings


def budget_service(settings: Settings, engine: Engine, keyring: Keyring) -> BudgetService:
    """Hard caps fail closed when the ledger is unreachable; the Redis ledger when ``redis_url`` is set."""
    store = BudgetStore(engine, keyring)
    ledger: Ledger
    if settings.redis_url:
        import redis

        from authz.budgets.redis_ledger import RedisLedger

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        ledger = RedisLedger(client)
    else:
        ledger = SqlLedger(engine)
    return BudgetService(store, ledger, outbox=Outbox(engine, store))


def webhook_worker(settings: Settings, service: BudgetService, engine: Engine) -> WebhookWorker:
    return WebhookWorker(engine, service.store, allow_loopback=settings.cimd_allow_loopback)


def metering_service(settings: Settings, engine: Engine) -> MeteringService:
    return service_from_settings(settings, engine)
