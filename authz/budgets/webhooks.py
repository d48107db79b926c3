"""Threshold webhooks: a durable outbox (one event per budget, window, threshold and endpoint) and a
delivery worker that signs per Standard Webhooks and retries with exponential backoff and jitter.

Exactly one event per threshold per period: the unique constraint
``(budget_id, period_key, threshold, endpoint_id)`` plus ``INSERT ... ON CONFLICT DO NOTHING``
makes every enqueue idempotent, so concurrent settles, a replayed settle or the reconciler can
never enqueue a second one. Workers on any number of replicas claim due rows with
``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or under ``BEGIN IMMEDIATE`` (SQLite), and lease them
with ``claimed_until_ms`` so a crashed worker's rows are retried after the lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import httpx2
from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from standardwebhooks import Webhook

from authz.budgets.ledger import Clock, system_clock
from authz.budgets.model import Budget
from authz.budgets.periods import Window
from authz.budgets.store import BudgetStore
from authz.core.netguard import _GuardedSyncTransport, check_url
from authz.storage.db import write_transaction
from authz.storage.models.budgets import WebhookDeliveryRow, WebhookOutboxRow

log = logging.getLogger("authz.budgets.webhooks")
OUTBOX = cast(Table, WebhookOutboxRow.__table__)
DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)
EVENT_TYPE = "budget.threshold_crossed"
_RANDOM = secrets.SystemRandom()


def crossed(budget: Budget, before: int, after: int) -> list[int]:
    """Thresholds (percent) that ``before -> after`` crosses for the first time: before < t% <= after."""
    return [t for t in budget.thresholds if before * 100 < t * budget.limit <= after * 100]


def reached(budget: Budget, spent: int) -> list[int]:
    """Thresholds (percent) at or below ``spent``: what the reconciler makes sure is enqueued."""
    return [t for t in budget.thresholds if t * budget.limit <= spent * 100]


class Outbox:
    def __init__(self, engine: Engine, store: BudgetStore, *, now: Clock = system_clock) -> None:
        self.engine = engine
        self.store = store
        self.now = now

    def enqueue(self, budget: Budget, w: Window, thresholds: list[int], spent: int) -> int:
        """Enqueue one event per threshold and endpoint unless already there; returns how many were new."""
        if not thresholds:
            return 0
        endpoints = self.store.webhooks(budget.id)
        if not endpoints:
            return 0
        at_ms = int(self.now() * 1000)
        rows = []
        for t in thresholds:
            payload = _payload(
                EVENT_TYPE,
                at_ms,
                {
                    "budget_id": budget.id,
                    "subject_type": budget.subject_type,
                    "subject_id": budget.subject_id,
                    "metric": budget.metric,
                    "currency": budget.currency,
                    "hard": budget.hard,
                    "limit": budget.limit,
                    "threshold_percent": t,
                    "spent": spent,
                    "period": budget.period,
                    "period_key": w.key,
                    "period_start": _iso(w.start),
                    "period_end": _iso(w.end),
                },
            )
            rows += [(budget.id, w.key, t, ep.id, payload) for ep in endpoints]
        with self.engine.begin() as conn:
            return insert_outbox(conn, rows, at_ms)


def enqueue_event(
    conn: Connection,
    *,
    source: str,
    key: str,
    event_type: str,
    endpoint_ids: list[str],
    data: dict[str, Any],
    at_ms: int,
) -> int:
    """Enqueue one event of another capability (e.g. billing's ``invoice.finalized``) per endpoint, in
    the caller's transaction. ``(source, key, endpoint)`` is its idempotency key (stored in the
    ``budget_id`` / ``period_key`` columns with threshold 0): enqueuing it again adds nothing. The
    worker finds the endpoint's URL and secret through its ``targets`` resolver."""
    payload = _payload(event_type, at_ms, data)
    return insert_outbox(conn, [(source, key, 0, ep, payload) for ep in endpoint_ids], at_ms)


def insert_outbox(conn: Connection, events: Iterable[tuple[str, str, int, str, str]], at_ms: int) -> int:
    """Insert ``(subject, key, threshold, endpoint_id, payload JSON)`` events as pending, due now, each
    with a fresh Standard Webhooks message id, in the caller's transaction; an event already in the
    outbox (same subject, key, threshold and endpoint: the unique key) is skipped. Returns how many
    were new. The one writer of ``webhook_outbox`` rows (budgets, billing and licensing use it)."""
    rows = [
        {
            "event_id": "msg_" + secrets.token_hex(16),
            "budget_id": subject,
            "endpoint_id": endpoint,
            "threshold": threshold,
            "period_key": key,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at_ms": at_ms,
            "claimed_until_ms": 0,
            "created_at_ms": at_ms,
        }
        for subject, key, threshold, endpoint, payload in events
    ]
    if not rows:
        return 0
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = (
        insert(OUTBOX)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["budget_id", "period_key", "threshold", "endpoint_id"])
    )
    return int(conn.execute(stmt).rowcount or 0)


def _payload(event_type: str, at_ms: int, data: dict[str, Any]) -> str:
    """The event body: ``{"type", "timestamp" (RFC 3339, UTC), "data"}`` as compact, sorted JSON."""
    timestamp = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"), sort_keys=True)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class WebhookWorker:
    """Delivers due outbox events. ``run_once`` is one claim-and-deliver pass; ``run`` loops it."""

    def __init__(
        self,
        engine: Engine,
        store: BudgetStore,
        *,
        client: httpx2.Client | None = None,
        allow_loopback: bool = False,
        max_attempts: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 3600.0,
        lease: float = 120.0,
        batch: int = 50,
        timeout: float = 10.0,
        now: Clock = system_clock,
        jitter: Callable[[], float] = _RANDOM.random,
        targets: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        # (url, secret) of an endpoint id; other capabilities (licensing) enqueue into the same outbox
        self.targets = targets or store.webhook_target
        self.allow_loopback = allow_loopback
        self.client = client or httpx2.Client(
            transport=_GuardedSyncTransport(allow_loopback),  # SSRF-safe: no private addresses, no redirects
            follow_redirects=False,
            trust_env=False,
            timeout=timeout,
        )
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.batch = batch
        self.now = now
        self.jitter = jitter
        self._sqlite = engine.dialect.name == "sqlite"

    def backoff(self, attempts: int) -> float:
        """Delay before attempt ``attempts + 1``: exponential, capped, with "equal jitter" (half fixed)."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return delay / 2 + self.jitter() * delay / 2

    def claim(self) -> list[Any]:
        at_ms = int(self.now() * 1000)
        query = (
            select(OUTBOX)
            .where(
                OUTBOX.c.state == "pending",
                OUTBOX.c.next_attempt_at_ms <= at_ms,
                OUTBOX.c.claimed_until_ms <= at_ms,
            )
            .order_by(OUTBOX.c.next_attempt_at_ms, OUTBOX.c.id)
            .limit(self.batch)
        )
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True)
        with write_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_([r.id for r in rows]))
                    .values(claimed_until_ms=at_ms + int(self.lease * 1000))
                )
        return list(rows)

    def run_once(self) -> int:
        """Claim due events and deliver each once; returns the number of attempts made."""
        rows = self.claim()
        for row in rows:
            self._deliver(row)
        return len(rows)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """The delivery loop (database and HTTP calls run in a worker thread)."""
        while not stop.is_set():
            try:
                done = await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("webhook delivery pass failed")
                done = 0
            if done == 0:
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass

    def _deliver(self, row: Any) -> None:
        attempt = row.attempts + 1
        target = self.targets(row.endpoint_id)
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        url = target[0] if target else ""
        if target is None:
            error = "endpoint deleted"
        else:
            url, secret = target
            signed_at = datetime.now(UTC)  # wall clock: receivers check the timestamp's freshness
            headers = {
                "content-type": "application/json",
                "webhook-id": row.event_id,
                "webhook-timestamp": str(int(signed_at.timestamp())),
                "webhook-signature": Webhook(secret).sign(row.event_id, signed_at, row.payload),
                "user-agent": "authz-budgets/1",
            }
            try:
                check_url(url, self.allow_loopback)
                response = self.client.post(url, content=row.payload.encode(), headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except Exception as exc:  # any transport failure is a failed attempt, retried
                error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.monotonic() - started) * 1000)
        at_ms = int(self.now() * 1000)
        values: dict[str, Any] = {"attempts": attempt, "claimed_until_ms": 0, "last_error": error}
        if error is None:
            values.update(state="delivered", delivered_at_ms=at_ms)
        elif target is None or attempt >= self.max_attempts:
            values.update(state="failed")
        else:
            values.update(next_attempt_at_ms=at_ms + int(self.backoff(attempt) * 1000))
        with self.engine.begin() as conn:
            conn.execute(
                DELIVERIES.insert().values(
                    outbox_id=row.id,
                    attempt=attempt,
                    url=url,
                    status_code=status,
                    duration_ms=duration_ms,
                    error=error,
                    at_ms=at_ms,
                )
            )
            conn.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(**values))
        if error is not None:
            log.warning(
                "webhook %s attempt %d to endpoint %s failed: %s", row.event_id, attempt, row.endpoint_id, error
            )

    def close(self) -> None:
        self.client.close()
