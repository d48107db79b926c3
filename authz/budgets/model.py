"""Budget values shared by the store, both ledgers and the service (plain data, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfoNotFoundError

from authz.budgets.periods import PERIODS, Window, window, zone

SUBJECT_TYPES = ("agent", "team", "workflow")
METRICS = ("tokens", "calls", "cost")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
SUBJECT_RE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
MAX_AMOUNT = 2**53  # exact in Redis Lua (doubles) and in JSON


class BudgetError(ValueError):
    """An invalid budget definition or request (maps to 400 at the API)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """A budget on one subject. ``limit`` is in the metric's unit (cost: micro-units of ``currency``)."""

    id: str
    subject_type: str
    subject_id: str
    metric: str
    limit: int
    period: str = "month"
    timezone: str = "UTC"
    hard: bool = True
    thresholds: tuple[int, ...] = ()
    currency: str | None = None

    def window(self, at: float) -> Window:
        return window(self.period, self.timezone, at)

    def validate(self) -> Budget:
        if self.subject_type not in SUBJECT_TYPES:
            raise BudgetError(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}")
        if not SUBJECT_RE.fullmatch(self.subject_id):
            raise BudgetError("subject_id must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
        if self.metric not in METRICS:
            raise BudgetError(f"metric must be one of {', '.join(METRICS)}")
        if self.period not in PERIODS:
            raise BudgetError(f"period must be one of {', '.join(PERIODS)}")
        if not 0 <= self.limit <= MAX_AMOUNT:
            raise BudgetError("limit must be an integer in [0, 2^53]")
        if (self.metric == "cost") != (self.currency is not None):
            raise BudgetError("currency is required for, and only for, the cost metric")
        if self.currency is not None and not CURRENCY_RE.fullmatch(self.currency):
            raise BudgetError("currency must be an ISO 4217 code such as USD")
        if any(not 1 <= t <= 1000 for t in self.thresholds) or len(set(self.thresholds)) != len(self.thresholds):
            raise BudgetError("thresholds must be distinct percentages in [1, 1000]")
        try:
            zone(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BudgetError(f"unknown time zone {self.timezone!r}") from exc
        return self


@dataclass(frozen=True, slots=True)
class Item:
    """One budget's share of a reservation, in that budget's current window."""

    budget_id: str
    period_key: str
    amount: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Budget held for one use until ``expires_at`` (Unix seconds); settle or release it.

    ``pending`` marks a fail-open reservation made while the ledger was unreachable (soft budgets
    only): it holds nothing and its settle is recorded for reconciliation.
    """

    id: str
    items: tuple[Item, ...]
    expires_at: float
    pending: bool = False


@dataclass(frozen=True, slots=True)
class Exhausted:
    """A refusal: hard budget ``budget_id`` cannot take the amount until ``retry_after`` (Unix seconds,
    the period end; None for a lifetime budget). ``reason`` is ``unavailable`` when the ledger could
    not be reached and hard caps fail closed."""

    budget_id: str
    retry_after: float | None
    reason: Literal["exhausted", "unavailable"] = "exhausted"

    def retry_after_seconds(self, now: float) -> int | None:
        """For a ``Retry-After`` header: whole seconds until the period ends (at least 1)."""
        if self.retry_after is None:
            return None
        return max(1, int(self.retry_after - now + 0.999))


@dataclass(frozen=True, slots=True)
class WindowSpend:
    """What one settle did to one budget window: ``spent`` before and after."""

    budget_id: str
    period_key: str
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class Settled:
    """The outcome of settle/release. ``state`` is ``settled``/``released`` when this call did it,
    ``already`` when an earlier call had (idempotent: nothing counted twice), ``unknown`` when the
    ledger has no such reservation (never made, or past retention)."""

    reservation_id: str
    state: Literal["settled", "released", "already", "unknown"]
    windows: tuple[WindowSpend, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Status:
    """A budget's current window: ``remaining`` = max(0, limit - spent - reserved)."""

    budget_id: str
    period_key: str
    spent: int
    reserved: int
    remaining: int
    period_start: float
    period_end: float | None
