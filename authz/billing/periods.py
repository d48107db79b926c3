"""Billing periods: half-open ``[start, end)`` instants from an interval, an anchor and a time zone.

* ``calendar`` anchor: periods start at the calendar boundary in the customer's time zone (the 1st
  of the month, Monday for weeks, Jan/Apr/Jul/Oct 1st for quarters, Jan 1st for years).
* ``anniversary`` anchor: periods start on the subscription's start day and time; a day that a
  month lacks is clamped to its last day (anchored on Jan 31: Feb 28/29, Mar 31, Apr 30, ...).

Usage is read from hourly rollups at the edges of a period, so a period boundary that is not a
whole UTC hour (a +05:30 zone, a start at 10:17) counts the events of its first hour from the
hour's start (documented in docs/billing.md).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

INTERVALS = ("week", "month", "quarter", "year")
ANCHORS = ("calendar", "anniversary")
MONTHS = {"month": 1, "quarter": 3, "year": 12}
MAX_PERIODS = 100_000  # a bound on walking forward from a subscription start


@dataclass(frozen=True, slots=True)
class Period:
    start: int  # Unix seconds, inclusive
    end: int  # Unix seconds, exclusive

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start) / 86_400))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None


def _add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` plus whole months, its day clamped to the target month's length."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def _boundary(origin: datetime, interval: str, k: int) -> datetime:
    if interval == "week":
        naive = origin.replace(tzinfo=None) + timedelta(weeks=k)
        return naive.replace(tzinfo=origin.tzinfo)
    return _add_months(origin, MONTHS[interval] * k)


def _origin(interval: str, anchor: str, start: datetime) -> datetime:
    """The first boundary at or before ``start`` (local time) for a calendar anchor; ``start`` itself
    for an anniversary anchor."""
    if anchor == "anniversary":
        return start
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    if interval == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def period_at(at: int, *, interval: str, anchor: str, tz: str, subscription_start: int) -> Period:
    """The period holding instant ``at`` for a subscription that started at ``subscription_start``."""
    z = zone(tz)
    origin = _origin(interval, anchor, datetime.fromtimestamp(subscription_start, UTC).astimezone(z))
    local = datetime.fromtimestamp(at, UTC).astimezone(z)
    # Estimate k, then step: months and weeks are irregular in seconds, the walk is a few steps.
    span = 7 * 86_400 if interval == "week" else MONTHS[interval] * 30 * 86_400
    k = max(0, int((local - origin).total_seconds() // span) - 1)
    for _ in range(MAX_PERIODS):
        lo, hi = _boundary(origin, interval, k), _boundary(origin, interval, k + 1)
        if _ts(hi) <= at:
            k += 1
        elif _ts(lo) > at and k > 0:
            k -= 1
        else:
            return Period(_ts(lo), _ts(hi))
    raise ValueError("no billing period found")


def _ts(local: datetime) -> int:
    return int(local.astimezone(UTC).timestamp())


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: str) -> int:
    """An RFC 3339 date-time (or a date, UTC midnight) as Unix seconds."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())
