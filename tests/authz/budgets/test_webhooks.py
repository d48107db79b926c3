"""Threshold webhooks: signed per Standard Webhooks, retried with backoff, one per threshold per period."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import Engine, func, select
from standardwebhooks import Webhook

from authz.budgets.ledger import Ledger
from authz.budgets.model import Exhausted
from authz.budgets.redis_ledger import RedisLedger
from authz.budgets.service import BudgetService, Usage
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore, new_webhook_secret
from authz.budgets.webhooks import Outbox, WebhookWorker, crossed
from authz.core.crypto import Keyring
from authz.storage.db import make_engine
from authz.storage.models.budgets import BudgetWebhookRow, WebhookDeliveryRow, WebhookOutboxRow
from tests.authz.budgets.conftest import Clock, Receiver, json_of


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> BudgetStore:
    return BudgetStore(engine, Keyring(os.urandom(32)))


def service(store: BudgetStore, ledger: Ledger, clock: Clock) -> BudgetService:
    return BudgetService(store, ledger, outbox=Outbox(store.engine, store, now=clock), now=clock)


def outbox_rows(engine: Engine) -> list[WebhookOutboxRow]:
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return list(s.scalars(select(WebhookOutboxRow).order_by(WebhookOutboxRow.threshold)))


def deliveries(engine: Engine) -> list[WebhookDeliveryRow]:
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return list(s.scalars(select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.id)))


def spend(svc: BudgetService, claims: dict[str, str], n: int) -> bool:
    got = svc.reserve_for_use(claims, Usage(calls=n))
    if isinstance(got, Exhausted):
        return False
    svc.settle(got, Usage(calls=n))
    return True


def test_crossing_rule() -> None:
    from authz.budgets.model import Budget

    b = Budget("b", "agent", "a", "calls", 10, thresholds=(50, 80, 100))
    assert crossed(b, 0, 4) == []
    assert crossed(b, 4, 5) == [50]
    assert crossed(b, 5, 10) == [80, 100]
    assert crossed(b, 10, 12) == []


def test_signed_webhook_verifies_with_standardwebhooks(
    store: BudgetStore, engine: Engine, clock: Clock, receiver: Receiver
) -> None:
    secret = new_webhook_secret()
    budget, created = store.create(
        "agent", "a1", metric="calls", limit=10, period="day", thresholds=[50, 80], webhooks=[(receiver.url, secret)]
    )
    assert created[0].secret == secret
    svc = service(store, SqlLedger(engine, now=clock), clock)
    spend(svc, {"agent": "a1"}, 6)
    assert [r.threshold for r in outbox_rows(engine)] == [50]
    worker = WebhookWorker(engine, store, allow_loopback=True, now=clock)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "budget.threshold_crossed"
    assert payload["data"]["threshold_percent"] == 50
    assert payload["data"]["budget_id"] == budget.id and payload["data"]["spent"] == 6
    assert headers["webhook-id"] == outbox_rows(engine)[0].event_id
    with pytest.raises(Exception):  # noqa: B017 - a wrong secret must not verify
        Webhook(new_webhook_secret()).verify(body, headers)
    assert outbox_rows(engine)[0].state == "delivered"
    log = deliveries(engine)
    assert [(d.attempt, d.status_code, d.error) for d in log] == [(1, 200, None)]


def test_receiver_answering_500_gets_retries_with_backoff(
    store: BudgetStore, engine: Engine, clock: Clock, receiver: Receiver
) -> None:
    store.create("agent", "a1", metric="calls", limit=2, thresholds=[100], webhooks=[(receiver.url, None)])
    svc = service(store, SqlLedger(engine, now=clock), clock)
    spend(svc, {"agent": "a1"}, 2)
    receiver.statuses = [500, 500, 503]
    worker = WebhookWorker(engine, store, allow_loopback=True, now=clock, base_delay=10, jitter=lambda: 1.0)
    try:
        due = []
        for attempt in range(1, 5):
            assert worker.run_once() == 1, f"attempt {attempt} was not due"
            assert worker.run_once() == 0  # not due again before the backoff
            row = outbox_rows(engine)[0]
            due.append(row.next_attempt_at_ms - int(clock() * 1000))
            clock.at = row.next_attempt_at_ms / 1000
    finally:
        worker.close()
    assert len(receiver.requests) == 4
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1  # the same event id on every retry
    assert due[:3] == [10_000, 20_000, 40_000]  # exponential (jitter pinned to its maximum)
    row = outbox_rows(engine)[0]
    assert (row.state, row.attempts) == ("delivered", 4)
    assert [(d.attempt, d.status_code) for d in deliveries(engine)] == [(1, 500), (2, 500), (3, 503), (4, 200)]
    assert deliveries(engine)[0].error == "HTTP 500"


def test_gives_up_after_max_attempts(store: BudgetStore, engine: Engine, clock: Clock, receiver: Receiver) -> None:
    store.create("agent", "a1", metric="calls", limit=1, thresholds=[100], webhooks=[(receiver.url, None)])
    spend(service(store, SqlLedger(engine, now=clock), clock), {"agent": "a1"}, 1)
    receiver.statuses = [500] * 10
    worker = WebhookWorker(engine, store, allow_loopback=True, now=clock, max_attempts=3, base_delay=1)
    try:
        for _ in range(5):
            worker.run_once()
            clock.advance(60)
    finally:
        worker.close()
    row = outbox_rows(engine)[0]
    assert (row.state, row.attempts) == ("failed", 3)
    assert len(deliveries(engine)) == 3


@pytest.mark.parametrize("backend", ["sql", "redis"])
def test_one_webhook_per_threshold_per_period_under_concurrent_settles(
    store: BudgetStore, engine: Engine, clock: Clock, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        ledger: Ledger = RedisLedger(redis.Redis.from_url(url), tag="w" + secrets.token_hex(4), now=clock)
    else:
        ledger = SqlLedger(engine, now=clock)
    store.create(
        "team",
        "t1",
        metric="calls",
        limit=100,
        period="day",
        thresholds=[50, 80, 100],
        webhooks=[("https://x.test/h", None)],
    )
    svc = service(store, ledger, clock)

    def spender(n: int) -> int:
        return sum(spend(svc, {"agent": f"a{n}", "team": "t1"}, 1) for _ in range(10))

    with ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(spender, range(16))) == 100  # 160 attempts at 1 call; 100 fit
    assert [r.threshold for r in outbox_rows(engine)] == [50, 80, 100]
    svc.reconcile()  # the reconciler re-enqueues idempotently: still one each
    assert len(outbox_rows(engine)) == 3
    clock.advance(86_400)  # the next day is a new period: its thresholds fire again
    assert spend(svc, {"team": "t1"}, 50)
    rows = outbox_rows(engine)
    assert len(rows) == 4 and len({r.period_key for r in rows}) == 2
    close = getattr(ledger, "client", None)
    if close is not None:
        close.close()


def test_concurrent_workers_deliver_each_event_once(
    store: BudgetStore, engine: Engine, clock: Clock, receiver: Receiver
) -> None:
    for n in range(12):
        store.create("agent", f"a{n}", metric="calls", limit=1, thresholds=[100], webhooks=[(receiver.url, None)])
    svc = service(store, SqlLedger(engine, now=clock), clock)
    for n in range(12):
        spend(svc, {"agent": f"a{n}"}, 1)
    workers = [WebhookWorker(engine, store, allow_loopback=True, now=clock, batch=3) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            while sum(pool.map(lambda w: w.run_once(), workers)):
                pass
    finally:
        for w in workers:
            w.close()
    ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert all(json_of(b)["data"]["threshold_percent"] == 100 for _, b in receiver.requests)


def test_secrets_are_encrypted_and_never_listed(store: BudgetStore, engine: Engine) -> None:
    secret = new_webhook_secret()
    budget, _ = store.create("agent", "a1", metric="calls", limit=1, webhooks=[("https://x.test/h", secret)])
    endpoint = store.webhooks(budget.id)[0]
    assert not hasattr(endpoint, "secret")
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        raw = s.scalars(select(BudgetWebhookRow.secret_enc)).one()
        assert secret.encode() not in raw and secret[6:].encode() not in raw
        assert s.scalar(select(func.count()).select_from(BudgetWebhookRow)) == 1
    assert store.webhook_target(endpoint.id) == ("https://x.test/h", secret)
