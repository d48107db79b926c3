"""``create_app(settings)``: wiring only. Builds the context, the Authlib server and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from authz import preflight, services
from authz.admin.bootstrap import ensure_admin_resource
from authz.audit.checkpoints import CheckpointDir, Checkpointer, log_signer
from authz.audit.log import AuditLog
from authz.audit.store import AuditTreeStore
from authz.billing.service import BillingService
from authz.budgets.service import BudgetService
from authz.console.bootstrap import ensure_console
from authz.context import Context
from authz.core.crypto import Keyring, load_or_create_kek
from authz.core.fetch import get_fetcher
from authz.core.settings import Settings
from authz.identity.directory import Directory
from authz.identity.revocations import RevocationView
from authz.licensing.sweeper import sweep_loop
from authz.oauth.cimd import ClientJwks
from authz.oauth.endpoints.metadata import build_metadata
from authz.oauth.endpoints.token import token_app
from authz.oauth.keys import KeyManager
from authz.oauth.server import AuthzServer
from authz.oauth.tokens import TokenIssuer
from authz.policy.engine import PolicyEngine
from authz.routes import routes
from authz.signals.transmitter import Transmitter
from authz.storage.db import make_engine
from authz.storage.sql import SqlStore
from authz.sync import ChangeWatcher

log = logging.getLogger("authz")

# Seconds between passes of the budget reconciler (charges soft-budget spend recorded while the
# ledger was unreachable, re-enqueues missed threshold webhooks). Tests shorten it.
RECONCILE_INTERVAL = 30.0
CLOSE_INTERVAL = 60.0  # seconds between passes that finalize billing periods past their grace


async def reconcile_loop(service: BudgetService, stop: asyncio.Event) -> None:
    """Call ``service.reconcile()`` (sync: in a worker thread) every ``RECONCILE_INTERVAL`` seconds
    until ``stop`` is set. Errors (ledger still down, database busy) are logged; the loop goes on.
    ``reconcile`` is idempotent per pending row, so several workers or replicas may run it."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONCILE_INTERVAL)
        if stop.is_set():
            return
        try:
            applied = await asyncio.to_thread(service.reconcile)
        except Exception:
            log.exception("budget reconciliation failed; retrying in %.0f s", RECONCILE_INTERVAL)
        else:
            if applied:
                log.info("budget reconciliation charged %d pending usage record(s)", applied)


def freeze_startup_heap() -> None:
    """Move what startup allocated (modules, compiled SQL, policies, caches) to the collector's
    permanent generation: full collections, which a request allocating many objects (an invoice
    preview of a thousand agents) triggers, then scan only what requests allocated. Without it they
    scan the whole heap, the tail of such a request's latency. Undone when the app stops."""
    gc.collect()
    gc.freeze()


async def close_loop(billing: BillingService, stop: asyncio.Event) -> None:
    """Finalize billing periods whose grace period is over, every ``CLOSE_INTERVAL`` seconds. Safe on
    every replica at once: each (subscription, period) is finalized exactly once."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CLOSE_INTERVAL)
        if stop.is_set():
            return
        try:
            closed = await asyncio.to_thread(billing.close_due)
        except Exception:
            log.exception("closing billing periods failed; retrying in %.0f s", CLOSE_INTERVAL)
        else:
            if any(created for _invoice, created in closed):
                log.info("finalized %d invoice(s)", sum(created for _invoice, created in closed))


def build_context(settings: Settings, store: SqlStore | None = None) -> Context:
    store = store or SqlStore(make_engine(settings.sqlalchemy_url))
    keyring = Keyring.from_text(preflight.kek_text(settings) or load_or_create_kek("", settings.data_dir))
    keys = KeyManager(store, keyring, settings.signing_alg)
    audit_store = AuditTreeStore(store.engine, tree=settings.audit_tree)
    audit = AuditLog(audit_store)
    checkpointer = Checkpointer(
        audit_store,
        log_signer(keyring, settings.log_origin),
        CheckpointDir(settings.checkpoint_dir),
        every=settings.audit_checkpoint_every,
        interval=settings.audit_checkpoint_interval,
    )
    if settings.audit_tree:
        audit.after_flush = checkpointer.appended
    return Context(
        settings=settings,
        store=store,
        keyring=keyring,
        keys=keys,
        directory=Directory(store, store, keyring, agents=store),
        revocations=RevocationView(store),
        issuer=TokenIssuer(settings.issuer, keys, keyring, store),
        audit=audit,
        policy=PolicyEngine.from_setting(settings.policies, store),
        audit_store=audit_store,
        checkpointer=checkpointer,
    )


def _client_jwks(settings: Settings) -> ClientJwks:
    """Keys for private_key_jwt: inline ``jwks``, else ``jwks_uri`` fetched (SSRF-safe) and cached."""
    return ClientJwks(get_fetcher(settings.cimd_allow_loopback))


class AuthzApp(Starlette):
    """Starlette, with ``POST`` to the token endpoint — the hot path — dispatched to
    :func:`~authz.oauth.endpoints.token.token_app` before the middleware stack and the route list
    (the same handler the ``/token`` route runs; every other request takes the usual way)."""

    def __init__(self, token_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token_path = token_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == scope.get("root_path", "") + self._token_path
        ):
            scope["app"] = self
            await token_app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, ctx: Context | None = None) -> Starlette:
    ctx = ctx or build_context(settings)
    engine = ctx.store.engine  # type: ignore[attr-defined]
    if ctx.budgets is None:
        ctx.budgets = services.budget_service(settings, engine, ctx.keyring)
    if ctx.metering is None:
        ctx.metering = services.metering_service(settings, engine)
    if ctx.licensing is None:
        ctx.licensing = services.licensing_service(ctx, engine)
    if ctx.metering.sink.on_counted is None:  # token events settle token and cost budgets
        services.charge_budgets_from_metering(ctx.metering, ctx.budgets)
    if ctx.billing is None:
        ctx.billing = services.billing_service(engine, ctx.keyring, ctx.metering, ctx.audit)
    watcher = ChangeWatcher(ctx)
    signals = Transmitter(engine, ctx.keys, settings)
    ctx.revocations.listeners.append(signals.wakeup.notify)  # wake SSF long polls on every new fact

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.keys.ensure()
        signals.wakeup.bind(asyncio.get_running_loop())
        ensure_admin_resource(ctx.store, ctx.settings)
        log.info("policies: %s", ctx.policy.describe())
        ensure_console(ctx.store, ctx.store, ctx.keyring, ctx.settings)
        ctx.revocations.refresh()
        ctx.audit.start()
        stop = threading.Event()
        watcher.start(stop)
        assert ctx.budgets is not None and ctx.metering is not None
        ctx.metering.start()
        assert ctx.licensing is not None
        ctx.licensing.limiter.start()
        worker = services.webhook_worker(settings, ctx.budgets, engine, ctx.licensing, ctx.billing)
        stop_webhooks = asyncio.Event()
        webhooks = asyncio.create_task(worker.run(stop_webhooks))
        stop_reconcile = asyncio.Event()
        reconciler = asyncio.create_task(reconcile_loop(ctx.budgets, stop_reconcile))
        sweeper = asyncio.create_task(
            sweep_loop(ctx.licensing, stop_reconcile, settings.license_sweep_interval, settings.license_expiring_within)
        )
        assert ctx.billing is not None
        closer = asyncio.create_task(close_loop(ctx.billing, stop_reconcile))
        freeze_startup_heap()
        try:
            yield
        finally:
            stop_reconcile.set()
            await sweeper
            ctx.licensing.limiter.stop()
            stop_webhooks.set()
            await reconciler
            await closer
            await webhooks
            worker.close()
            ctx.metering.close()
            app.state.server.dpop.close()  # the DPoP replay cache's writer thread and connection
            app.state.server.private_key_jwt.close()  # the same for client assertions' jti
            stop.set()
            watcher.join()
            ctx.audit.stop()
            gc.unfreeze()  # this app's objects can be collected again once it is gone
            if ctx.checkpointer is not None and settings.audit_tree:
                try:  # the last records get a signed checkpoint outside the database too
                    ctx.checkpointer.sign()
                except Exception:
                    logging.getLogger("authz.audit").exception("final audit checkpoint failed")

    app = AuthzApp(settings.path_prefix + "/token", routes=routes(settings), lifespan=lifespan)
    app.state.ctx = ctx
    app.state.server = AuthzServer(ctx, _client_jwks(settings))
    app.state.signals = signals
    app.state.metadata = build_metadata(settings)
    return app
