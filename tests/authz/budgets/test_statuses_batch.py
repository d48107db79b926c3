"""``BudgetService.statuses`` (one batch on the SQL ledger) agrees with ``status`` budget by budget:
settled spend, reservations in flight, expired reservations, budgets never used."""

from __future__ import annotations

import os
import time

from sqlalchemy import Engine

from authz.budgets.service import BudgetService, Usage
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore
from authz.core.crypto import Keyring
from authz.storage.db import make_engine
from authz.storage.models import Base


def test_batch_statuses_match_single_reads(sqlite_url: str) -> None:
    engine: Engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    store = BudgetStore(engine, Keyring(os.urandom(32)))
    service = BudgetService(store, SqlLedger(engine))
    a, _ = store.create("agent", "agt_a", metric="calls", limit=10, period="day")
    b, _ = store.create("agent", "agt_b", metric="calls", limit=5, period="month")
    c, _ = store.create("team", "t1", metric="tokens", limit=1000, period="lifetime")
    settled = service.reserve([a, c], Usage(calls=1, tokens=40))
    assert not hasattr(settled, "budget_id")
    service.settle(settled)  # type: ignore[arg-type]
    service.reserve([a], Usage(calls=2))  # in flight
    service.reserve([b], Usage(calls=1), ttl=0.01)  # expires
    time.sleep(0.05)
    budgets = [a, b, c, a]
    assert service.statuses(budgets) == [service.status(x) for x in budgets]
    assert [s.spent for s in service.statuses(budgets)] == [1, 0, 40, 1]
