"""The SQL ledger's per-call statements, built once with bound parameters.

:class:`authz.budgets.sql_ledger.SqlLedger` runs a reserve and a settle on every lease a resource
server takes (``POST /api/v1/budgets/reserve`` and ``/settle``). Building each statement per call
(SQLAlchemy expression objects, operator coercions, a fresh cache key) cost several times what
SQLite spends executing it; built once here, a call only binds its values. The SQL text is the
same as before (same columns, same ``WHERE``, same ``FOR UPDATE`` on PostgreSQL), so the locking
and the answers do not change. Parameter names carry a ``k_`` prefix: an ``UPDATE``'s ``SET``
reserves the column names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BindParameter, Insert, Select, Table, Update, and_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from authz.storage.models.budgets import BudgetReservationItemRow, BudgetReservationRow, BudgetUsageRow

USAGE = cast(Table, BudgetUsageRow.__table__)
RES = cast(Table, BudgetReservationRow.__table__)
ITEMS = cast(Table, BudgetReservationItemRow.__table__)

__all__ = ["ITEMS", "RES", "USAGE", "Statements"]


@dataclass(frozen=True, slots=True)
class Statements:
    """Each statement of a reserve, a settle or a release; ``keys`` parameters are expanding lists
    of ``(budget_id, period_key)``."""

    existing: Select[list[list[str | int]], int]  # k_rid
    usage_insert: Insert  # executemany: budget_id, period_key, spent, reserved, updated_at_ms
    usage_lock: Select[str, str, int, int]  # keys
    expired: Select[str, str, int]  # keys, k_at
    expired_uncount: Update  # keys, k_at
    usage_unhold: Update  # k_b, k_p, k_amount (reserved -= amount)
    res_insert: Insert
    items_insert: Insert  # executemany
    usage_hold: Update  # executemany: k_b, k_p, k_amount, k_at (reserved += amount)
    res_state: Select[str, list[list[str | int]]]  # k_rid
    items_counted: Select[str, bool]  # k_rid
    usage_charge: Update  # executemany: k_b, k_p, k_held, k_spend, k_at
    items_uncount: Update  # k_rid
    res_finish: Update  # k_rid, k_state, k_at

    @classmethod
    def build(cls, *, sqlite: bool) -> Statements:
        insert = sqlite_insert if sqlite else pg_insert
        keys: BindParameter[Any] = bindparam("keys", expanding=True)
        usage_keys = tuple_(USAGE.c.budget_id, USAGE.c.period_key).in_(keys)
        window = and_(USAGE.c.budget_id == bindparam("k_b"), USAGE.c.period_key == bindparam("k_p"))
        lock = (
            select(USAGE.c.budget_id, USAGE.c.period_key, USAGE.c.spent, USAGE.c.reserved)
            .where(usage_keys)
            .order_by(USAGE.c.budget_id, USAGE.c.period_key)
        )
        expired_where = and_(
            tuple_(ITEMS.c.budget_id, ITEMS.c.period_key).in_(bindparam("keys", expanding=True)),
            ITEMS.c.counted.is_(True),
            ITEMS.c.expires_at_ms <= bindparam("k_at"),
        )
        state = select(RES.c.state, RES.c["items"]).where(RES.c.id == bindparam("k_rid"))
        of_reservation = ITEMS.c.reservation_id == bindparam("k_rid")
        return cls(
            existing=select(RES.c["items"], RES.c.expires_at_ms).where(RES.c.id == bindparam("k_rid")),
            usage_insert=insert(USAGE).on_conflict_do_nothing(),
            usage_lock=lock if sqlite else lock.with_for_update(),
            expired=select(ITEMS.c.budget_id, ITEMS.c.period_key, func.sum(ITEMS.c.amount))
            .where(expired_where)
            .group_by(ITEMS.c.budget_id, ITEMS.c.period_key),
            expired_uncount=update(ITEMS).where(expired_where).values(counted=False),
            usage_unhold=update(USAGE).where(window).values(reserved=USAGE.c.reserved - bindparam("k_amount")),
            res_insert=RES.insert(),
            items_insert=ITEMS.insert(),
            usage_hold=update(USAGE)
            .where(window)
            .values(reserved=USAGE.c.reserved + bindparam("k_amount"), updated_at_ms=bindparam("k_at")),
            res_state=state if sqlite else state.with_for_update(),
            items_counted=select(ITEMS.c.budget_id, ITEMS.c.counted).where(of_reservation),
            usage_charge=update(USAGE)
            .where(window)
            .values(
                reserved=USAGE.c.reserved - bindparam("k_held"),
                spent=USAGE.c.spent + bindparam("k_spend"),
                updated_at_ms=bindparam("k_at"),
            ),
            items_uncount=update(ITEMS).where(of_reservation).values(counted=False),
            res_finish=update(RES)
            .where(RES.c.id == bindparam("k_rid"))
            .values(state=bindparam("k_state"), finished_at_ms=bindparam("k_at")),
        )
