"""Metering charges token and cost budgets: in the flush's transaction, applied once, rounded up."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from authz.budgets.metered import PENDING, MeteredCharges, MeteredSpend
from authz.budgets.service import BudgetService
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
def svc(engine: Engine, clock: Clock) -> BudgetService:
    store = BudgetStore(engine, Keyring(os.urandom(32)))
    return BudgetService(store, SqlLedger(engine, now=clock), now=clock)


def pending_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(PENDING)).scalar_one())


def test_token_and_cost_budgets_are_charged_once_rounded_up(svc: BudgetService, engine: Engine) -> None:
    tokens, _ = svc.store.create("agent", "a1", metric="tokens", limit=1000)
    team_cost, _ = svc.store.create("team", "t1", metric="cost", limit=5_000_000, currency="USD")
    svc.store.create("team", "t1", metric="calls", limit=10)  # calls are not charged by metering
    euro, _ = svc.store.create("team", "t1", metric="cost", limit=5_000_000, currency="EUR")
    charges = MeteredCharges(svc)
    spends = [
        MeteredSpend("a1", "t1", None, tokens=700, cost_pusd=2_500_000_000_001),  # 2.500000000001 USD
        MeteredSpend("a2", "t1", None, tokens=50, cost_pusd=1),
    ]
    with engine.begin() as conn:
        assert charges.record(conn, spends, now_ms=0) == 2  # the agent's tokens, the team's USD cost
    assert charges.apply() == 2
    assert charges.apply() == 0  # applied once
    assert svc.status(tokens).spent == 700
    assert svc.status(team_cost).spent == 2_500_002  # micro-USD, each flush's sum rounded up
    assert svc.status(euro).spent == 0


def test_a_rolled_back_flush_charges_nothing_and_a_hard_cap_is_charged_past_its_limit(
    svc: BudgetService, engine: Engine
) -> None:
    b, _ = svc.store.create("agent", "a1", metric="tokens", limit=100, hard=True)
    charges = MeteredCharges(svc)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        charges.record(conn, [MeteredSpend("a1", None, None, tokens=60)], now_ms=0)
        raise RuntimeError("the flush failed before commit")
    assert pending_rows(engine) == 0 and charges.apply() == 0
    with engine.begin() as conn:
        charges.record(conn, [MeteredSpend("a1", None, None, tokens=130)], now_ms=0)
    charges.apply()
    status = svc.status(b)
    assert (status.spent, status.remaining) == (130, 0)  # the tokens were consumed: counted in full
    assert svc.check_issuance("a1", None, None) is not None  # ... and the spent cap refuses new tokens
