"""BudgetService: applicable budgets, reserve for a token use, issuance refusal, failure behaviour."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from authz.budgets.model import BudgetError, Exhausted, Reservation
from authz.budgets.redis_ledger import RedisLedger
from authz.budgets.service import BudgetService, Usage
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore
from authz.core.crypto import Keyring
from authz.storage.db import make_engine
from tests.authz.budgets.conftest import Clock


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> BudgetStore:
    return BudgetStore(engine, Keyring(os.urandom(32)))


def dead_redis(clock: Clock) -> RedisLedger:
    # nothing listens on port 1; no client-side retries (production: keep them short, see docs/budgets.md)
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    return RedisLedger(client, now=clock)


def test_applicable_covers_agent_team_and_workflow(store: BudgetStore, engine: Engine, clock: Clock) -> None:
    a, _ = store.create("agent", "a1", metric="calls", limit=5)
    t, _ = store.create("team", "t1", metric="tokens", limit=1000)
    w, _ = store.create("workflow", "wf", metric="cost", limit=10_000_000, currency="EUR")
    store.create("agent", "other", metric="calls", limit=5)
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    assert {b.id for b in svc.applicable("a1", "t1", "wf")} == {a.id, t.id, w.id}
    assert {b.id for b in svc.applicable("a1", None, None)} == {a.id}
    got = svc.reserve_for_use(
        {"agent": "a1", "team": "t1", "workflow": "wf"}, Usage(tokens=300, cost=2_500_000, currency="EUR")
    )
    assert isinstance(got, Reservation)
    assert {i.budget_id: i.amount for i in got.items} == {a.id: 1, t.id: 300, w.id: 2_500_000}
    svc.settle(got, Usage(tokens=120, cost=1_000_000, currency="EUR"))
    assert (svc.status(t).spent, svc.status(w).spent, svc.status(a).spent) == (120, 1_000_000, 1)


def test_a_cost_budget_is_never_charged_zero_for_want_of_a_price(
    store: BudgetStore, engine: Engine, clock: Clock
) -> None:
    b, _ = store.create("agent", "a1", metric="cost", limit=10, currency="USD")
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    with pytest.raises(BudgetError, match="priced in EUR"):  # a price in another currency is not a USD amount
        svc.reserve_for_use({"agent": "a1"}, Usage(calls=1, cost=5, currency="EUR"))
    # a tool call before its tokens are priced holds nothing on the cost budget ...
    got = svc.reserve_for_use({"agent": "a1"}, Usage(calls=1))
    assert isinstance(got, Reservation) and [i.amount for i in got.items] == [0]
    svc.settle(got, Usage(calls=1, cost=10, currency="USD"))
    # ... but once the budget is spent, even a use estimated at 0 is refused (hard cap)
    refused = svc.reserve_for_use({"agent": "a1"}, Usage(calls=1))
    assert isinstance(refused, Exhausted) and refused.budget_id == b.id


def test_reserve_units_grants_what_fits_of_a_lease_across_budgets(
    store: BudgetStore, engine: Engine, clock: Clock
) -> None:
    calls, _ = store.create("agent", "a1", metric="calls", limit=10)
    tokens, _ = store.create("team", "t1", metric="tokens", limit=100)
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    budgets = svc.applicable("a1", "t1", None)
    got, units = svc.reserve_units(budgets, Usage(calls=1, tokens=30), 8)
    assert isinstance(got, Reservation) and units == 3  # the team's tokens fit three uses of 30
    assert {i.budget_id: i.amount for i in got.items} == {calls.id: 3, tokens.id: 90}
    refused, units = svc.reserve_units(budgets, Usage(calls=1, tokens=30), 8)
    assert isinstance(refused, Exhausted) and refused.budget_id == tokens.id
    svc.settle(got, Usage(calls=2, tokens=40))  # two uses happened; the third unit is freed
    assert (svc.status(calls).spent, svc.status(calls).reserved, svc.status(tokens).spent) == (2, 0, 40)
    got, units = svc.reserve_units(budgets, Usage(calls=1, tokens=0), 50)
    assert isinstance(got, Reservation) and units == 8  # calls left: 10 - 2


def test_check_issuance_refuses_a_hard_exhausted_budget_until_period_end(
    store: BudgetStore, engine: Engine, clock: Clock
) -> None:
    b, _ = store.create("agent", "a1", metric="calls", limit=2, period="day")
    store.create("team", "t1", metric="calls", limit=1, hard=False)
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    assert svc.check_issuance("a1", "t1", None) is None
    for _ in range(2):
        got = svc.reserve_for_use({"agent": "a1", "team": "t1"}, Usage())
        assert isinstance(got, Reservation)
        svc.settle(got)
    refused = svc.check_issuance("a1", "t1", None)  # the soft team budget (over its limit) does not refuse
    assert isinstance(refused, Exhausted) and refused.budget_id == b.id
    end = svc.status(b).period_end
    assert refused.retry_after == end and end is not None
    assert refused.retry_after_seconds(end - 90.2) == 91
    clock.at = end
    assert svc.check_issuance("a1", "t1", None) is None


def test_cache_invalidation_sees_new_budgets(store: BudgetStore, engine: Engine, clock: Clock) -> None:
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock, cache_ttl=3600)
    assert svc.applicable("a1", None, None) == ()
    store.create("agent", "a1", metric="calls", limit=1)
    assert svc.applicable("a1", None, None) == ()  # cached
    svc.invalidate()
    assert len(svc.applicable("a1", None, None)) == 1


def test_unreachable_ledger_fails_closed_for_hard_caps(store: BudgetStore, clock: Clock) -> None:
    b, _ = store.create("agent", "a1", metric="calls", limit=100)
    svc = BudgetService(store, dead_redis(clock), now=clock)
    got = svc.reserve_for_use({"agent": "a1"}, Usage())
    assert isinstance(got, Exhausted) and got.reason == "unavailable" and got.budget_id == b.id
    refused = svc.check_issuance("a1", None, None)
    assert isinstance(refused, Exhausted) and refused.reason == "unavailable"


def test_unreachable_ledger_fail_open_is_configurable_and_reconciled(
    store: BudgetStore, engine: Engine, clock: Clock
) -> None:
    soft, _ = store.create("agent", "a1", metric="tokens", limit=100, hard=False)
    down = BudgetService(store, dead_redis(clock), now=clock)
    got = down.reserve_for_use({"agent": "a1"}, Usage(tokens=40))  # soft only: fails open
    assert isinstance(got, Reservation) and got.pending
    assert down.settle(got, Usage(tokens=30)).state == "settled"
    hard, _ = store.create("agent", "a2", metric="calls", limit=1)
    lenient = BudgetService(store, dead_redis(clock), now=clock, fail_closed=False)
    assert isinstance(lenient.reserve_for_use({"agent": "a2"}, Usage()), Reservation)
    # Back online: the recorded spend is charged exactly once, however often reconcile runs.
    up = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    assert up.reconcile() == 1
    assert up.reconcile() == 0
    assert up.status(soft).spent == 30
    assert up.status(hard).spent == 0  # the lenient reservation was never settled


def test_store_crud(store: BudgetStore) -> None:
    b, hooks = store.create(
        "team", "t1", metric="tokens", limit=5, period="week", timezone="Europe/Berlin", thresholds=[80, 50]
    )
    assert hooks == [] and b.thresholds == (50, 80)
    assert store.get(b.id) == b
    changed = store.update(b.id, limit=9, hard=False)
    assert (changed.limit, changed.hard) == (9, False)
    assert store.list_budgets(subject_type="team") == [changed]
    with pytest.raises(BudgetError):
        store.update(b.id, metric="calls")
    with pytest.raises(BudgetError):
        store.create("agent", "a1", metric="calls", limit=1, timezone="Mars/Olympus")
    with pytest.raises(BudgetError):
        store.create("agent", "a1", metric="cost", limit=1)  # no currency
    with pytest.raises(BudgetError):
        store.create("agent", "a1", metric="calls", limit=1, webhooks=[("ftp://x", None)])
    assert store.delete(b.id) and store.get(b.id) is None and not store.delete(b.id)


def test_unreachable_sql_ledger_is_unavailable_not_an_error(store: BudgetStore, clock: Clock) -> None:
    from authz.budgets.ledger import LedgerUnavailable
    from authz.budgets.model import Budget

    dead = make_engine("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")
    try:
        ledger = SqlLedger(dead, now=clock)
        b = Budget("b", "agent", "a1", "calls", 1)
        with pytest.raises(LedgerUnavailable):
            ledger.reserve("r", [(b, 1)], 60)
        with pytest.raises(LedgerUnavailable):
            ledger.status(b)
        store.create("agent", "a1", metric="calls", limit=1)
        got = BudgetService(store, ledger, now=clock).reserve_for_use({"agent": "a1"}, Usage())
        assert isinstance(got, Exhausted) and got.reason == "unavailable"
    finally:
        dead.dispose()


def test_settle_with_actual_needs_the_reservation(store: BudgetStore, engine: Engine, clock: Clock) -> None:
    store.create("agent", "a1", metric="calls", limit=5)
    svc = BudgetService(store, SqlLedger(engine, now=clock), now=clock)
    got = svc.reserve_for_use({"agent": "a1"}, Usage(), request_id="rq-1")
    assert isinstance(got, Reservation)
    with pytest.raises(BudgetError):
        svc.settle("rq-1", Usage(calls=2))
    assert svc.settle("rq-1").state == "settled"  # by id: charge what was reserved
