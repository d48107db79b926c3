"""``BudgetService``: the facade the authorization server (issuance) and the resource-server hook
(reserve before a tool call, settle after) call. Plain Python: no Starlette.

Failure behaviour (docs/budgets.md): when the ledger is unreachable, hard budgets fail closed
(``Exhausted(reason="unavailable")`` -> 503) unless ``fail_closed=False``; soft budgets fail open:
the use proceeds with a *pending* reservation whose actual spend is written to
``budget_pending_usage`` and charged to the ledger by :meth:`BudgetService.reconcile`. There is
never a per-replica local counter, so an outage cannot multiply a budget by the replica count.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Engine, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from authz.budgets.ledger import Clock, Ledger, LedgerUnavailable, WindowCache, system_clock
from authz.budgets.model import Budget, BudgetError, Exhausted, Item, Reservation, Settled, Status
from authz.budgets.periods import Window, window_of_key
from authz.budgets.store import BudgetStore
from authz.budgets.webhooks import Outbox, crossed, reached
from authz.storage.models.budgets import BudgetPendingUsageRow

log = logging.getLogger("authz.budgets")
PENDING = cast(Table, BudgetPendingUsageRow.__table__)


@dataclass(frozen=True, slots=True)
class Usage:
    """An estimate or an actual use, in every metric; each budget takes the one it measures."""

    tokens: int = 0
    calls: int = 1
    cost: int = 0  # micro-units of ``currency``
    currency: str | None = None

    def times(self, n: int) -> Usage:
        """``n`` uses of this size (a lease of ``n`` units)."""
        return Usage(tokens=self.tokens * n, calls=self.calls * n, cost=self.cost * n, currency=self.currency)

    def amount(self, budget: Budget) -> int:
        if budget.metric == "tokens":
            return self.tokens
        if budget.metric == "calls":
            return self.calls
        if self.cost == 0:  # nothing priced yet (a tool call's cost arrives with its token events)
            return 0
        if self.currency != budget.currency:  # never price a cost budget at 0 for want of a price
            raise BudgetError(f"budget {budget.id} counts {budget.currency}; the usage is priced in {self.currency}")
        return self.cost


def subjects(agent: str | None, team: str | None, workflow: str | None) -> list[tuple[str, str]]:
    pairs = (("agent", agent), ("team", team), ("workflow", workflow))
    return [(kind, value) for kind, value in pairs if value]


class BudgetService:
    def __init__(
        self,
        store: BudgetStore,
        ledger: Ledger,
        *,
        outbox: Outbox | None = None,
        fail_closed: bool = True,
        cache_ttl: float = 5.0,
        reservation_ttl: float = 120.0,
        now: Clock = system_clock,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.outbox = outbox
        self.fail_closed = fail_closed
        self.cache_ttl = cache_ttl
        self.reservation_ttl = reservation_ttl
        self.now = now
        self._cache: dict[tuple[str | None, str | None, str | None], tuple[float, tuple[Budget, ...]]] = {}
        self._by_id: dict[str, Budget] = {}
        self._lock = threading.Lock()
        self._windows = WindowCache()
        self._unrecorded: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=100_000)
        self._charging = threading.Lock()

    # -- definitions ------------------------------------------------------------------------------
    def applicable(self, agent: str | None, team: str | None, workflow: str | None) -> tuple[Budget, ...]:
        """Every budget on the agent, its team and the workflow (cached ``cache_ttl`` seconds)."""
        key = (agent, team, workflow)
        at = self.now()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > at:
            return hit[1]
        budgets = tuple(self.store.for_subjects(subjects(agent, team, workflow)))
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (at + self.cache_ttl, budgets)
            self._by_id.update((b.id, b) for b in budgets)
        return budgets

    def invalidate(self) -> None:
        """Forget cached definitions (call after a budget is created, changed or deleted)."""
        with self._lock:
            self._cache.clear()
            self._by_id.clear()

    def _budget(self, budget_id: str) -> Budget | None:
        budget = self._by_id.get(budget_id)
        if budget is None:
            budget = self.store.get(budget_id)
            if budget is not None:
                with self._lock:
                    self._by_id[budget_id] = budget
        return budget

    # -- token use ----------------------------------------------------------------------------------
    def reserve_for_use(
        self,
        token_claims: Mapping[str, Any],
        estimate: Usage,
        *,
        request_id: str | None = None,
        ttl: float | None = None,
    ) -> Reservation | Exhausted:
        """Reserve ``estimate`` on every budget of the token's agent, team and workflow (all or none)."""
        budgets = self.applicable(token_claims.get("agent"), token_claims.get("team"), token_claims.get("workflow"))
        return self.reserve(budgets, estimate, request_id=request_id, ttl=ttl)

    def reserve(
        self,
        budgets: Sequence[Budget],
        estimate: Usage,
        *,
        request_id: str | None = None,
        ttl: float | None = None,
    ) -> Reservation | Exhausted:
        rid = request_id or "rq_" + secrets.token_hex(16)
        ttl = self.reservation_ttl if ttl is None else ttl
        charges = [(b, estimate.amount(b)) for b in budgets]
        try:
            return self.ledger.reserve(rid, charges, ttl)
        except LedgerUnavailable as exc:
            hard = [b for b in budgets if b.hard]
            if hard and self.fail_closed:
                log.warning("budget ledger unreachable, refusing (hard caps fail closed): %s", exc)
                return Exhausted(hard[0].id, None, reason="unavailable")
            log.warning("budget ledger unreachable, admitting (fail open) and recording for reconciliation: %s", exc)
            at = self.now()
            items = tuple(Item(b.id, self._windows.get(b, at).key, amount) for b, amount in charges)
            return Reservation(rid, items, at + ttl, pending=True)

    def reserve_units(
        self,
        budgets: Sequence[Budget],
        per_use: Usage,
        units: int,
        *,
        request_id: str | None = None,
        ttl: float | None = None,
    ) -> tuple[Reservation | Exhausted, int]:
        """Lease up to ``units`` uses of ``per_use`` in one hold: as many as every budget can take.

        A resource server that leases budget slices (docs/budgets.md, "Leases") asks for the uses it
        expects in the next fraction of a second; near the cap it gets what still fits (at least one
        use) instead of a refusal, so the cap is spent to the last unit and never beyond: a lease is
        an ordinary all-or-none reservation of ``k * per_use``. Returns the reservation (or the
        refusal when not even one use fits) and ``k``.
        """
        rid = request_id or "rq_" + secrets.token_hex(16)
        want = max(1, units)
        for attempt in range(6):
            attempt_id = rid if attempt == 0 else f"{rid}~{attempt}"
            got = self.reserve(budgets, per_use.times(want), request_id=attempt_id, ttl=ttl)
            if isinstance(got, Reservation) or got.reason != "exhausted" or want == 1:
                return got, want
            refusing = self._budget(got.budget_id)
            step = per_use.amount(refusing) if refusing is not None else 0
            if refusing is None or step <= 0:
                return got, want
            try:
                fits = self.ledger.status(refusing).remaining // step
            except LedgerUnavailable:
                return got, want
            if fits < 1:
                return got, want
            want = min(want - 1, fits)
        return self.reserve(budgets, per_use, request_id=f"{rid}~last", ttl=ttl), 1

    def settle(self, reservation: Reservation | str, actual: Usage | None = None) -> Settled:
        """Record the actual use (default: the estimate reserved) and enqueue crossed threshold webhooks."""
        if actual is not None and not isinstance(reservation, Reservation):
            raise BudgetError("settle with an actual usage needs the Reservation (its budgets), not only its id")
        amounts = None
        if actual is not None and isinstance(reservation, Reservation):
            amounts = {}
            for item in reservation.items:
                budget = self._budget(item.budget_id)
                if budget is not None:
                    amounts[item.budget_id] = actual.amount(budget)
        if isinstance(reservation, Reservation) and reservation.pending:
            self._record_pending(reservation, amounts)
            return Settled(reservation.id, "settled")
        result = self.ledger.settle(reservation, amounts)
        self._thresholds(result)
        return result

    def release(self, reservation: Reservation | str) -> Settled:
        if isinstance(reservation, Reservation) and reservation.pending:
            return Settled(reservation.id, "released")
        return self.ledger.release(reservation)

    def _thresholds(self, result: Settled) -> None:
        if self.outbox is None:
            return
        for ws in result.windows:
            budget = self._budget(ws.budget_id)
            if budget is None:
                continue
            hit = crossed(budget, ws.before, ws.after)
            if hit:
                try:
                    self.outbox.enqueue(budget, self._window_of(budget, ws.period_key), hit, ws.after)
                except SQLAlchemyError:  # the reconciler enqueues it later (idempotent)
                    log.exception("could not enqueue budget threshold webhook for %s", budget.id)

    def _window_of(self, budget: Budget, period_key: str) -> Window:
        w = self._windows.get(budget, self.now())
        return w if w.key == period_key else window_of_key(budget.period, budget.timezone, period_key)

    # -- issuance ---------------------------------------------------------------------------------------
    def check_issuance(self, agent: str | None, team: str | None, workflow: str | None) -> Exhausted | None:
        """A hard budget whose current window is fully spent refuses new tokens (until the period ends)."""
        spent_of = getattr(self.ledger, "spent", None)  # the SQL ledger's one-statement read
        for budget in self.applicable(agent, team, workflow):
            if not budget.hard:
                continue
            try:
                if spent_of is not None:
                    spent, period_end = spent_of(budget)
                else:
                    status = self.ledger.status(budget)
                    spent, period_end = status.spent, status.period_end
            except LedgerUnavailable:
                if self.fail_closed:
                    return Exhausted(budget.id, None, reason="unavailable")
                continue
            if spent >= budget.limit:
                return Exhausted(budget.id, period_end)
        return None

    def status(self, budget: Budget) -> Status:
        return self.ledger.status(budget)

    def statuses(self, budgets: Sequence[Budget]) -> list[Status]:
        """Many statuses at once: one batch on the SQL ledger, one status per budget otherwise."""
        batch = getattr(self.ledger, "statuses", None)
        if batch is not None:
            result: list[Status] = batch(budgets)
            return result
        return [self.ledger.status(b) for b in budgets]

    # -- reconciliation ------------------------------------------------------------------------------
    def _record_pending(self, reservation: Reservation, amounts: Mapping[str, int] | None) -> None:
        rows = [
            (reservation.id, i.budget_id, i.amount if amounts is None else amounts.get(i.budget_id, i.amount))
            for i in reservation.items
        ]
        engine = self.store.engine
        try:
            self._insert_pending(engine, rows)
        except SQLAlchemyError:
            log.exception("could not record fail-open budget usage; keeping it in memory for reconciliation")
            self._unrecorded.extend(rows)

    def _insert_pending(self, engine: Engine, rows: Sequence[tuple[str, str, int]]) -> None:
        if not rows:
            return
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        at_ms = int(self.now() * 1000)
        values = [{"request_id": r, "budget_id": b, "amount": a, "at_ms": at_ms} for r, b, a in rows]
        with engine.begin() as conn:
            conn.execute(insert(PENDING).values(values).on_conflict_do_nothing())

    def charge_pending(self, batch: int = 1000) -> int:
        """Charge every unapplied ``budget_pending_usage`` row to the ledger once (``pending:<row>``,
        idempotent: a crash between the charge and marking the row applied re-finds the same
        reservation and its settle answers ``already``). Charged as soft: the use already happened."""
        engine = self.store.engine
        if self._unrecorded:
            drained = [self._unrecorded.popleft() for _ in range(len(self._unrecorded))]
            try:
                self._insert_pending(engine, drained)
            except SQLAlchemyError:
                self._unrecorded.extend(drained)
                raise
        applied = 0
        with self._charging:  # one charger per process (the ids make concurrent replicas safe too)
            while True:
                with engine.connect() as conn:
                    pending = conn.execute(
                        select(PENDING).where(PENDING.c.applied_at_ms.is_(None)).order_by(PENDING.c.id).limit(batch)
                    ).all()
                for row in pending:
                    budget = self._budget(row.budget_id)
                    if budget is not None:
                        rid = f"pending:{row.id}"
                        got = self.ledger.reserve(
                            rid, [(replace(budget, hard=False), row.amount)], self.reservation_ttl
                        )
                        if isinstance(got, Reservation):
                            self._thresholds(self.ledger.settle(got, {budget.id: row.amount}))
                    with engine.begin() as conn:
                        conn.execute(
                            update(PENDING).where(PENDING.c.id == row.id).values(applied_at_ms=int(self.now() * 1000))
                        )
                    applied += 1
                if len(pending) < batch:
                    return applied

    def reconcile(self) -> int:
        """Charge pending usage (fail-open spend recorded during an outage, token and cost spend
        recorded by metering), then make sure every threshold already reached in the current windows
        has its webhook enqueued. Returns the pending rows applied."""
        applied = self.charge_pending()
        if self.outbox is not None:
            for budget in self.store.list_budgets():
                if budget.thresholds:
                    status = self.ledger.status(budget)
                    hit = reached(budget, status.spent)
                    if hit:
                        w = self._windows.get(budget, self.now())
                        self.outbox.enqueue(budget, w, hit, status.spent)
        return applied
