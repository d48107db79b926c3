"""The app lifespan runs ``BudgetService.reconcile()`` periodically: soft-budget spend recorded
while the ledger was unreachable is charged by the running app, and a failing pass does not stop it."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import authz.app
from authz.budgets.model import Reservation
from authz.budgets.redis_ledger import RedisLedger
from authz.budgets.service import BudgetService, Usage
from tests.authz.conftest import ASFactory

pytestmark = pytest.mark.anyio


def _dead_ledger() -> RedisLedger:
    # nothing listens on port 1; no client-side retries
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    return RedisLedger(client)


async def test_the_running_app_charges_pending_usage(
    as_factory: ASFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(authz.app, "RECONCILE_INTERVAL", 0.05)
    server = await as_factory(dev_mode=True)
    svc = server.ctx.budgets
    assert svc is not None
    soft, _ = svc.store.create("agent", "agt_soft", metric="tokens", limit=1000, period="day", hard=False)

    # The first pass fails (as if the database were busy): logged, and the loop goes on.
    real = svc.reconcile
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return real()

    monkeypatch.setattr(svc, "reconcile", flaky)

    # A replica whose ledger is unreachable admits the soft budget (fail open) and records the spend.
    down = BudgetService(svc.store, _dead_ledger())
    got = down.reserve_for_use({"agent": "agt_soft"}, Usage(tokens=40))
    assert isinstance(got, Reservation) and got.pending
    assert down.settle(got, Usage(tokens=30)).state == "settled"
    assert svc.status(soft).spent == 0

    with caplog.at_level(logging.ERROR, logger="authz"):
        for _ in range(200):  # up to ~10 s
            if svc.status(soft).spent:
                break
            await asyncio.sleep(0.05)
    assert svc.status(soft).spent == 30
    assert "budget reconciliation failed" in caplog.text
    n = len(calls)
    await asyncio.sleep(0.3)  # later passes keep running and charge nothing twice
    assert len(calls) > n
    assert svc.status(soft).spent == 30
