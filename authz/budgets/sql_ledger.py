"""The SQL ledger: SQLite (``BEGIN IMMEDIATE``: one writer at a time) and PostgreSQL (row locks).

On PostgreSQL a call locks the ``budget_usage`` rows of its windows with ``SELECT ... FOR UPDATE``
in (budget id, period key) order, so two calls over overlapping budgets never deadlock; settle
first locks its reservation row (two settles of one reservation serialize; the second sees it
settled). ``budget_usage.reserved`` counts unexpired holds; items past ``expires_at_ms`` are
subtracted lazily (``counted`` -> false) by the next call on the window under the same lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from authz.budgets.ledger import (
    DEFAULT_RETENTION,
    Charges,
    Clock,
    LedgerUnavailable,
    WindowCache,
    actual_for,
    now_ms,
    plan,
    system_clock,
)
from authz.budgets.model import Budget, Exhausted, Item, Reservation, Settled, Status, WindowSpend
from authz.budgets.sql_statements import ITEMS, RES, USAGE, Statements
from authz.storage.db import write_transaction

SPENT_FRESH = 1.0  # seconds a hard budget's spend read by the issuance check is reused (see SqlLedger.spent)


class SqlLedger:
    def __init__(self, engine: Engine, *, now: Clock = system_clock, retention: float = DEFAULT_RETENTION) -> None:
        self.engine = engine
        self.now = now
        self.retention = retention
        self._sqlite = engine.dialect.name == "sqlite"
        self._windows = WindowCache()
        self._q = Statements.build(sqlite=self._sqlite)
        spent = select(USAGE.c.spent).where(USAGE.c.budget_id == bindparam("b"), USAGE.c.period_key == bindparam("p"))
        compiled = spent.compile(dialect=engine.dialect)
        self._spent_sql = compiled.string
        self._spent_order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._spent_seen: dict[tuple[str, str], tuple[int, float, int]] = {}  # (spent, monotonic, generation)
        self._generation = 0  # bumped by every write transaction of this ledger

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with write_transaction(self.engine) as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:  # connection refused/lost, database locked too long
            raise LedgerUnavailable(f"SQL ledger unreachable: {type(exc.orig).__name__}") from exc
        finally:
            self._generation += 1  # what :meth:`spent` remembered may be stale now

    def _lock_windows(
        self, conn: Connection, keys: Sequence[tuple[str, str]], at_ms: int
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """Create missing usage rows, lock them in key order, purge expired holds; returns (spent, reserved)."""
        q = self._q
        conn.execute(
            q.usage_insert,
            [{"budget_id": b, "period_key": k, "spent": 0, "reserved": 0, "updated_at_ms": at_ms} for b, k in keys],
        )
        params = {"keys": list(keys), "k_at": at_ms}
        rows = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(q.usage_lock, params)}
        expired = conn.execute(q.expired, params).all()
        if expired:
            conn.execute(q.expired_uncount, params)
            for bid, pk, amount in expired:
                conn.execute(q.usage_unhold, {"k_b": bid, "k_p": pk, "k_amount": int(amount)})
                spent, reserved = rows[(bid, pk)]
                rows[(bid, pk)] = (spent, reserved - int(amount))
        return rows

    # -- operations -----------------------------------------------------------------------------
    def reserve(self, request_id: str, charges: Charges, ttl: float) -> Reservation | Exhausted:
        at = self.now()
        planned = plan(charges, at, self._windows)
        at_ms = int(at * 1000)
        expires_ms = at_ms + int(ttl * 1000)
        q = self._q
        try:
            with self._tx() as conn:
                existing = self._existing(conn, request_id)
                if existing is not None:
                    return existing
                if not planned:
                    return Reservation(request_id, (), expires_ms / 1000)
                rows = self._lock_windows(conn, [(i.budget_id, i.period_key) for _, i, _ in planned], at_ms)
                for budget, item, w in planned:
                    spent, reserved = rows[(item.budget_id, item.period_key)]
                    if budget.hard and spent + reserved + max(item.amount, 1) > budget.limit:
                        return Exhausted(budget.id, w.end)
                conn.execute(
                    q.res_insert,
                    {
                        "id": request_id,
                        "state": "active",
                        "items": [[i.budget_id, i.period_key, i.amount] for _, i, _ in planned],
                        "expires_at_ms": expires_ms,
                        "created_at_ms": at_ms,
                    },
                )
                conn.execute(
                    q.items_insert,
                    [
                        {
                            "reservation_id": request_id,
                            "budget_id": i.budget_id,
                            "period_key": i.period_key,
                            "amount": i.amount,
                            "expires_at_ms": expires_ms,
                            "counted": True,
                        }
                        for _, i, _ in planned
                    ],
                )
                holds = [{"k_b": i.budget_id, "k_p": i.period_key, "k_amount": i.amount} for _, i, _ in planned]
                conn.execute(q.usage_hold, [{**h, "k_at": at_ms} for h in holds])
                return Reservation(request_id, tuple(i for _, i, _ in planned), expires_ms / 1000)
        except IntegrityError:  # a concurrent reserve with the same id won: return its reservation
            with self.engine.connect() as conn:
                found = self._existing(conn, request_id)
            if found is None:
                raise
            return found

    def reserve_many(self, requests: Sequence[tuple[str, Charges, float]]) -> list[Reservation | Exhausted]:
        return [self.reserve(rid, charges, ttl) for rid, charges, ttl in requests]

    def _existing(self, conn: Connection, request_id: str) -> Reservation | None:
        row = conn.execute(self._q.existing, {"k_rid": request_id}).first()
        if row is None:
            return None
        return Reservation(request_id, tuple(Item(str(b), str(k), int(a)) for b, k, a in row[0]), row[1] / 1000)

    def settle(self, reservation: Reservation | str, actual: Mapping[str, int] | None = None) -> Settled:
        return self._finish(reservation, actual, "settled")

    def release(self, reservation: Reservation | str) -> Settled:
        return self._finish(reservation, None, "released")

    def _finish(self, reservation: Reservation | str, actual: Mapping[str, int] | None, to: str) -> Settled:
        rid = reservation if isinstance(reservation, str) else reservation.id
        at_ms = now_ms(self.now)
        q = self._q
        with self._tx() as conn:
            row = conn.execute(q.res_state, {"k_rid": rid}).first()
            if row is None:
                return Settled(rid, "unknown")
            if row[0] != "active":
                return Settled(rid, "already")
            items = sorted((Item(str(b), str(k), int(a)) for b, k, a in row[1]), key=lambda i: i.budget_id)
            spends = [actual_for(i, actual) if to == "settled" else 0 for i in items]
            windows: list[WindowSpend] = []
            if items:
                rows = self._lock_windows(conn, [(i.budget_id, i.period_key) for i in items], at_ms)
                counted = {r[0]: r[1] for r in conn.execute(q.items_counted, {"k_rid": rid})}
                charges = []
                for item, spend in zip(items, spends, strict=True):
                    held = item.amount if counted.get(item.budget_id) else 0
                    charges.append(
                        {"k_b": item.budget_id, "k_p": item.period_key, "k_held": held, "k_spend": spend, "k_at": at_ms}
                    )
                    before = rows[(item.budget_id, item.period_key)][0]
                    windows.append(WindowSpend(item.budget_id, item.period_key, before, before + spend))
                conn.execute(q.usage_charge, charges)
                conn.execute(q.items_uncount, {"k_rid": rid})
            conn.execute(q.res_finish, {"k_rid": rid, "k_state": to, "k_at": at_ms})
            return Settled(rid, "settled" if to == "settled" else "released", tuple(windows))

    def status(self, budget: Budget) -> Status:
        at = self.now()
        at_ms = int(at * 1000)
        w = self._windows.get(budget, at)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(USAGE.c.spent, USAGE.c.reserved).where(
                        USAGE.c.budget_id == budget.id, USAGE.c.period_key == w.key
                    )
                ).first()
                expired = conn.execute(
                    select(func.coalesce(func.sum(ITEMS.c.amount), 0)).where(
                        ITEMS.c.budget_id == budget.id,
                        ITEMS.c.period_key == w.key,
                        ITEMS.c.counted.is_(True),
                        ITEMS.c.expires_at_ms <= at_ms,
                    )
                ).scalar_one()
        except (OperationalError, InterfaceError) as exc:
            raise LedgerUnavailable(f"SQL ledger unreachable: {type(exc.orig).__name__}") from exc
        spent, reserved = (row.spent, row.reserved - int(expired)) if row else (0, 0)
        return Status(budget.id, w.key, spent, reserved, max(0, budget.limit - spent - reserved), w.start, w.end)

    def spent(self, budget: Budget) -> tuple[int, float | None]:
        """``status(budget).spent`` and ``.period_end`` (what a hard budget's issuance check reads).

        On the token endpoint for every token of an agent with a budget, so the one statement is
        compiled once for the engine's dialect and run on a pooled DBAPI connection (as
        ``SqlStore.remember_jti``): SQLAlchemy's statement building and execution cost ten times the
        read. The expired-holds sum of :meth:`status` only changes ``reserved``, so it is not read.

        The answer is remembered for :data:`SPENT_FRESH` seconds, until this ledger writes anything
        (every reserve, settle, release and metering charge of this process goes through it): a
        token request then reads no database at all (on PostgreSQL the read was a round trip waited
        on the event loop). What another replica spends reaches this one's issuance check at most
        that much later; the hard limit itself is enforced where spend is reserved, not here.
        """
        w = self._windows.get(budget, self.now())
        key, generation, mono = (budget.id, w.key), self._generation, time.monotonic()
        seen = self._spent_seen.get(key)
        if seen is not None and seen[2] == generation and mono - seen[1] < SPENT_FRESH:
            return seen[0], w.end
        params = {"b": budget.id, "p": w.key}
        args = params if self._spent_order is None else tuple(params[name] for name in self._spent_order)
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            conn = self.engine.raw_connection()
            try:
                cur = conn.cursor()
                try:
                    cur.execute(self._spent_sql, args)
                    row = cur.fetchone()
                finally:
                    cur.close()
            finally:
                conn.close()  # back to the pool (which rolls back the read transaction)
        except (OperationalError, InterfaceError, dbapi.OperationalError, dbapi.InterfaceError) as exc:
            orig = getattr(exc, "orig", None) or exc
            raise LedgerUnavailable(f"SQL ledger unreachable: {type(orig).__name__}") from exc
        value = int(row[0]) if row else 0
        if len(self._spent_seen) >= 10_000:
            self._spent_seen.clear()
        self._spent_seen[key] = (value, mono, generation)
        return value, w.end

    def statuses(self, budgets: Sequence[Budget]) -> list[Status]:
        """:meth:`status` of many budgets in two statements (the console shows pages of budgets)."""
        if not budgets:
            return []
        at = self.now()
        at_ms = int(at * 1000)
        windows = [self._windows.get(b, at) for b in budgets]
        pairs = [(b.id, w.key) for b, w in zip(budgets, windows, strict=True)]
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(USAGE.c.budget_id, USAGE.c.period_key, USAGE.c.spent, USAGE.c.reserved).where(
                        tuple_(USAGE.c.budget_id, USAGE.c.period_key).in_(pairs)
                    )
                ).all()
                expired = conn.execute(
                    select(ITEMS.c.budget_id, ITEMS.c.period_key, func.sum(ITEMS.c.amount))
                    .where(
                        tuple_(ITEMS.c.budget_id, ITEMS.c.period_key).in_(pairs),
                        ITEMS.c.counted.is_(True),
                        ITEMS.c.expires_at_ms <= at_ms,
                    )
                    .group_by(ITEMS.c.budget_id, ITEMS.c.period_key)
                ).all()
        except (OperationalError, InterfaceError) as exc:
            raise LedgerUnavailable(f"SQL ledger unreachable: {type(exc.orig).__name__}") from exc
        usage = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
        gone = {(r[0], r[1]): int(r[2] or 0) for r in expired}
        out = []
        for b, w in zip(budgets, windows, strict=True):
            spent, reserved = usage.get((b.id, w.key), (0, 0))
            reserved -= gone.get((b.id, w.key), 0) if (b.id, w.key) in usage else 0
            out.append(Status(b.id, w.key, spent, reserved, max(0, b.limit - spent - reserved), w.start, w.end))
        return out

    def sweep(self, limit: int = 10_000) -> int:
        """Delete reservations finished (or expired) more than ``retention`` ago; optional housekeeping.

        Items still counted (expired but not yet subtracted from their window) are left to the lazy purge.
        """
        cutoff = now_ms(self.now) - int(self.retention * 1000)
        live = select(ITEMS.c.reservation_id).where(ITEMS.c.reservation_id == RES.c.id, ITEMS.c.counted.is_(True))
        old_enough = or_(and_(RES.c.state != "active", RES.c.finished_at_ms < cutoff), RES.c.expires_at_ms < cutoff)
        with self._tx() as conn:
            ids = [r.id for r in conn.execute(select(RES.c.id).where(old_enough, ~live.exists()).limit(limit))]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                conn.execute(ITEMS.delete().where(ITEMS.c.reservation_id.in_(part)))
                conn.execute(RES.delete().where(RES.c.id.in_(part)))
            return len(ids)
