"""Builds the budget and metering services from settings (SQL by default, Redis when configured).

Kept apart from ``authz.app`` so the CLI and tests can build the same services without an app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from authz.billing.rollup import UsageKeeper
from authz.billing.service import BillingService
from authz.budgets.ledger import Ledger
from authz.budgets.metered import MeteredCharges, MeteredSpend
from authz.budgets.service import BudgetService
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore
from authz.budgets.webhooks import Outbox, WebhookWorker
from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.licensing.ratelimit import Limit, RateLimiter, RedisCounts, SharedCounts, SqlCounts
from authz.licensing.service import Licensing
from authz.licensing.store import LicenseStore
from authz.metering import MeteringService, service_from_settings
from authz.metering.sink import Spend

if TYPE_CHECKING:
    from authz.audit.log import AuditLog
    from authz.context import Context


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


def webhook_worker(
    settings: Settings,
    service: BudgetService,
    engine: Engine,
    licensing: Licensing | None = None,
    billing: BillingService | None = None,
) -> WebhookWorker:
    """One worker delivers every outbox event: budget thresholds, licensing events (``lwh_`` endpoints)
    and billing events (``bwh_`` endpoints)."""
    budget_target = service.store.webhook_target

    def target(endpoint_id: str) -> tuple[str, str] | None:
        if licensing is not None and endpoint_id.startswith("lwh_"):
            return licensing.webhooks.target(endpoint_id)
        if billing is not None and endpoint_id.startswith("bwh_"):
            return billing.webhooks.target(endpoint_id)
        return budget_target(endpoint_id)

    return WebhookWorker(engine, service.store, allow_loopback=settings.cimd_allow_loopback, targets=target)


def licensing_service(ctx: Context, engine: Engine) -> Licensing:
    """License keys; rate limits shared through Redis when ``redis_url`` is set, else SQL."""
    from authz.identity.agents.lifecycle import Agents

    settings = ctx.settings
    shared: SharedCounts
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        shared = RedisCounts(client, ttl=2 * settings.license_rate_window + 60)
    else:
        shared = SqlCounts(engine)
    window = settings.license_rate_window
    limiter = RateLimiter(
        shared,
        {
            "key": Limit(settings.license_rate_per_key, window),
            "ip": Limit(settings.license_rate_per_ip, window),
            "miss": Limit(settings.license_rate_misses_per_ip, window),
        },
    )
    return Licensing(
        LicenseStore(engine), ctx.keyring, ctx.audit, limiter,
        agents=lambda: Agents.from_context(ctx), cache_ttl=settings.cache_staleness,
    )  # fmt: skip


def billing_service(
    engine: Engine, keyring: Keyring, metering: MeteringService | None, audit: AuditLog | None = None
) -> BillingService:
    """Billing (its operator changes audited in ``audit``); metering events get their customer from the
    agent (and unknown customers are refused)."""
    billing = BillingService(engine, keyring, audit=audit)
    if metering is not None:
        metering.attribute = billing.attribute
        metering.sink.on_rolled_up = UsageKeeper()  # each flush keeps the billing periods' usage
    return billing


def metering_service(settings: Settings, engine: Engine) -> MeteringService:
    return service_from_settings(settings, engine)


def charge_budgets_from_metering(metering: MeteringService, budgets: BudgetService) -> MeteredCharges:
    """``tokens.consumed`` events settle token and cost budgets: recorded in each flush's transaction,
    charged right after it commits (and by the reconciler, should that fail)."""
    charges = MeteredCharges(budgets)

    def on_counted(conn: Connection, spends: list[Spend], now_ms: int) -> None:
        charges.record(conn, (MeteredSpend(*spend) for spend in spends), now_ms)

    metering.sink.on_counted = on_counted
    metering.after_flush = charges.apply
    return charges
