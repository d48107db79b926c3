"""The ledger contract: reserve across every applicable budget (all or none), settle, release, status.

Two implementations share one contract test suite: :class:`authz.budgets.redis_ledger.RedisLedger`
(one Lua script per operation) and :class:`authz.budgets.sql_ledger.SqlLedger` (SQLite
``BEGIN IMMEDIATE`` / PostgreSQL ``SELECT ... FOR UPDATE`` in a stable order).

Rules both follow:

* a hard budget refuses when ``spent + reserved + max(amount, 1) > limit``: an amount above what is
  left, or any use at all (even one estimated at 0, e.g. a tool call that will report its tokens
  afterwards) once the window is fully spent or held; a soft one never refuses but counts;
* a reservation counts until its ``expires_at`` and then stops counting by itself: expired
  reservations are subtracted lazily by the next operation on the window, so no sweeper is needed
  for correctness (``sweep`` only deletes old rows/keys);
* settle and release are idempotent (keyed by the reservation id = the caller's request id); a
  settle after expiry still records the actual spend (the work happened) without double-freeing;
* an item settled without an actual amount is charged its reserved amount (never $0);
* counters are keyed by period window, so a new period starts at zero with no reset job; a
  reservation is charged to the window it was made in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from authz.budgets.model import MAX_AMOUNT, Budget, BudgetError, Exhausted, Item, Reservation, Settled, Status
from authz.budgets.periods import Window

Charges = Sequence[tuple[Budget, int]]
Clock = Callable[[], float]
DEFAULT_RETENTION = 86_400.0  # how long settled reservation ids are remembered (idempotency horizon)


class LedgerUnavailable(RuntimeError):
    """The ledger's backing service could not be reached (the service decides: fail closed or open)."""


class Ledger(Protocol):
    def reserve(self, request_id: str, charges: Charges, ttl: float) -> Reservation | Exhausted:
        """Hold ``amount`` on every budget, atomically, for ``ttl`` seconds; or refuse with the first
        exhausted hard budget (nothing held). Reserving an existing id returns that reservation."""
        ...

    def reserve_many(self, requests: Sequence[tuple[str, Charges, float]]) -> list[Reservation | Exhausted]:
        """Many independent reservations in one round trip (each all-or-none on its own)."""
        ...

    def settle(self, reservation: Reservation | str, actual: Mapping[str, int] | None = None) -> Settled:
        """Release the hold and record the actual spend per budget id (default: the reserved amount)."""
        ...

    def release(self, reservation: Reservation | str) -> Settled:
        """Release the hold without spending (the use did not happen)."""
        ...

    def status(self, budget: Budget) -> Status:
        """Spent, unexpired reserved, remaining and the window bounds of ``budget`` now."""
        ...


class WindowCache:
    """Memoises each budget's current window until it ends (the window function is pure)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Window] = {}

    def get(self, budget: Budget, at: float) -> Window:
        key = (budget.period, budget.timezone)
        w = self._cache.get(key)
        if w is None or at < w.start or (w.end is not None and at >= w.end):
            w = budget.window(at)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = w
        return w


def plan(charges: Charges, at: float, windows: WindowCache) -> list[tuple[Budget, Item, Window]]:
    """Merge duplicate budgets and sort by id: the stable lock/key order of every ledger call."""
    merged: dict[str, tuple[Budget, int]] = {}
    for budget, amount in charges:
        if not isinstance(amount, int) or amount < 0 or amount > MAX_AMOUNT:
            raise BudgetError("amounts are integers in [0, 2^53]")
        if "|" in budget.id or ";" in budget.id:
            raise BudgetError("budget ids must not contain '|' or ';'")
        prev = merged.get(budget.id)
        merged[budget.id] = (budget, amount + (prev[1] if prev else 0))
    out = []
    for bid in sorted(merged):
        budget, amount = merged[bid]
        w = windows.get(budget, at)
        out.append((budget, Item(bid, w.key, amount), w))
    return out


def actual_for(item: Item, actual: Mapping[str, int] | None) -> int:
    value = item.amount if actual is None else actual.get(item.budget_id, item.amount)
    if not isinstance(value, int) or value < 0 or value > MAX_AMOUNT:
        raise BudgetError("actual amounts are integers in [0, 2^53]")
    return value


def now_ms(clock: Clock) -> int:
    return int(clock() * 1000)


def system_clock() -> float:
    return time.time()
