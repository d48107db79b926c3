"""Ledger construction from a picklable spec, and the loops run in spawned processes."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from authz.budgets.ledger import Ledger
from authz.budgets.model import Budget, Exhausted, Reservation


@dataclass(frozen=True)
class Spec:
    backend: str  # sqlite | postgres | redis
    url: str
    tag: str = "t"


def close(ledger: Ledger) -> None:
    engine = getattr(ledger, "engine", None)
    if engine is not None:
        engine.dispose()
    client = getattr(ledger, "client", None)
    if client is not None:
        client.close()


def make_ledger(spec: Spec, now: Callable[[], float] = time.time) -> Ledger:
    if spec.backend == "redis":
        import redis

        from authz.budgets.redis_ledger import RedisLedger

        return RedisLedger(redis.Redis.from_url(spec.url), tag=spec.tag, now=now)
    from authz.budgets.sql_ledger import SqlLedger
    from authz.storage.db import make_engine

    return SqlLedger(make_engine(spec.url), now=now)


def spend_until_refused(spec: Spec, budget: Budget, name: str, extra_attempts: int = 3) -> tuple[int, int, int]:
    """Reserve 1 and settle 1 until refused; then try ``extra_attempts`` more. Returns
    (successful settles, refusals, admissions after the first refusal)."""
    ledger = make_ledger(spec)
    try:
        return _spend(ledger, budget, name, extra_attempts)
    finally:
        close(ledger)


def _spend(ledger: Ledger, budget: Budget, name: str, extra_attempts: int) -> tuple[int, int, int]:
    settled = refused = late = 0
    while True:
        got = ledger.reserve(f"{name}-{secrets.token_hex(6)}", [(budget, 1)], 60)
        if isinstance(got, Exhausted):
            refused += 1
            break
        assert ledger.settle(got, {budget.id: 1}).state == "settled"
        settled += 1
    for _ in range(extra_attempts):
        got = ledger.reserve(f"{name}-{secrets.token_hex(6)}", [(budget, 1)], 60)
        if isinstance(got, Exhausted):
            refused += 1
        else:
            late += 1
    return settled, refused, late


def reserve_and_die(spec: Spec, budget: Budget, ttl: float) -> float:
    """Reserve and never settle; the process then exits without cleanup (os._exit)."""
    ledger = make_ledger(spec)
    try:
        got = ledger.reserve("killed-" + secrets.token_hex(4), [(budget, budget.limit)], ttl)
    finally:
        close(ledger)
    assert isinstance(got, Reservation)
    return got.expires_at


def reserve_and_exit_hard(spec: Spec, budget: Budget, ttl: float, conn) -> None:  # type: ignore[no-untyped-def]
    conn.send(reserve_and_die(spec, budget, ttl))
    conn.close()
    os._exit(0)
