"""Exact period windows: a budget's counters are keyed by the window, so a new period starts at zero.

There is no reset job (LiteLLM's resets got lost across pods): the window of an instant is a pure
function of the period, the budget's IANA time zone and the instant. Day, week (Monday first) and
month boundaries are local midnights; a day is 23 or 25 hours long across a DST change. A midnight
that does not exist (a DST gap at 00:00) starts the day at the transition instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month", "lifetime")
LIFETIME_KEY = "life"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous midnight is its first occurrence; a non-existent one maps to the transition.
    naive = datetime(day.year, day.month, day.day)
    return datetime.fromtimestamp(naive.replace(tzinfo=tz).timestamp(), UTC)


def _start_day(period: str, local: date) -> date:
    if period == "day":
        return local
    if period == "week":
        return local - timedelta(days=local.weekday())
    if period == "month":
        return local.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def _next_day(period: str, start: date) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_window(period: str, tz: str, at: datetime | float) -> tuple[datetime, datetime | None]:
    """The window ``[start, end)`` (UTC datetimes) that contains ``at`` (aware datetime or Unix seconds) in ``tz``.

    ``lifetime`` is ``[1970-01-01T00:00Z, None)``.
    """
    if period == "lifetime":
        return EPOCH, None
    zi = zone(tz)
    instant = datetime.fromtimestamp(at, zi) if isinstance(at, int | float) else at.astimezone(zi)
    start_day = _start_day(period, instant.date())
    return _local_midnight(start_day, zi), _local_midnight(_next_day(period, start_day), zi)


@dataclass(frozen=True, slots=True)
class Window:
    """A period window: the counters' key, and its bounds in Unix seconds (``end`` None for lifetime)."""

    key: str
    start: float
    end: float | None


def window(period: str, tz: str, at: float) -> Window:
    """The window of ``at`` (Unix seconds) with its ledger key: ``d:2026-03-29``, ``w:2026-03-23``, ``m:2026-03``."""
    if period == "lifetime":
        return Window(LIFETIME_KEY, EPOCH.timestamp(), None)
    start, end = period_window(period, tz, at)
    assert end is not None
    local = start.astimezone(zone(tz)).date()
    if period == "month":
        key = f"m:{local:%Y-%m}"
    else:
        key = f"{period[0]}:{local.isoformat()}"
    return Window(key, start.timestamp(), end.timestamp())


def window_of_key(period: str, tz: str, key: str) -> Window:
    """The window a ledger key names (e.g. a reservation settled after its period ended)."""
    if period == "lifetime" or key == LIFETIME_KEY:
        return window("lifetime", tz, 0.0)
    kind, _, text = key.partition(":")
    first = date.fromisoformat(text + "-01" if kind == "m" else text)
    w = window(period, tz, _local_midnight(first, zone(tz)).timestamp())
    if w.key != key:
        raise ValueError(f"{key!r} is not a {period} window key")
    return w
