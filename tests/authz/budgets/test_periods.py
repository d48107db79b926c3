"""Exact period windows at the awkward boundaries: month ends, leap days, DST changes, week start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from authz.budgets.periods import period_window, window, window_of_key

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc, arg-type]


def test_month_end_last_microsecond_and_next_month() -> None:
    start, end = period_window("month", "UTC", utc(2026, 1, 31, 23, 59, 59) + timedelta(microseconds=999_999))
    assert (start, end) == (utc(2026, 1, 1), utc(2026, 2, 1))
    assert period_window("month", "UTC", utc(2026, 2, 1)) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert period_window("month", "UTC", utc(2026, 12, 31, 12)) == (utc(2026, 12, 1), utc(2027, 1, 1))


def test_leap_day() -> None:
    assert period_window("month", "UTC", utc(2028, 2, 29, 12)) == (utc(2028, 2, 1), utc(2028, 3, 1))
    assert period_window("day", "UTC", utc(2028, 2, 29, 23, 59)) == (utc(2028, 2, 29), utc(2028, 3, 1))
    assert window("day", "UTC", utc(2028, 2, 29, 1).timestamp()).key == "d:2028-02-29"


def test_week_starts_on_monday() -> None:
    sunday_night = utc(2026, 3, 29, 23, 59)
    assert period_window("week", "UTC", sunday_night) == (utc(2026, 3, 23), utc(2026, 3, 30))
    assert period_window("week", "UTC", utc(2026, 3, 30)) == (utc(2026, 3, 30), utc(2026, 4, 6))
    assert window("week", "UTC", utc(2026, 3, 25).timestamp()).key == "w:2026-03-23"


def test_spring_forward_day_is_23_hours() -> None:
    start, end = period_window("day", "Europe/Berlin", datetime(2026, 3, 29, 12, tzinfo=BERLIN))
    assert start == utc(2026, 3, 28, 23)  # midnight CET (+01:00)
    assert end == utc(2026, 3, 29, 22)  # midnight CEST (+02:00)
    assert end is not None and end - start == timedelta(hours=23)


def test_fall_back_day_is_25_hours() -> None:
    start, end = period_window("day", "Europe/Berlin", utc(2026, 10, 25, 1, 30))  # inside the repeated hour
    assert (start, end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert end is not None and end - start == timedelta(hours=25)


def test_week_and_month_across_dst_in_new_york() -> None:
    start, end = period_window("week", "America/New_York", utc(2026, 3, 10, 12))
    assert (start, end) == (utc(2026, 3, 9, 4), utc(2026, 3, 16, 4))  # DST began Sunday 8 March
    start, end = period_window("month", "America/New_York", utc(2026, 11, 1, 3, 59))  # still 31 Oct locally
    assert (start, end) == (utc(2026, 10, 1, 4), utc(2026, 11, 1, 4))
    assert period_window("month", "America/New_York", utc(2026, 11, 1, 4))[0] == utc(2026, 11, 1, 4)


def test_midnight_that_does_not_exist_starts_at_the_transition() -> None:
    # Santiago springs forward at 00:00 local (-04 -> -03) on 6 September 2026: 00:00-00:59 never happen.
    start, end = period_window("day", "America/Santiago", utc(2026, 9, 6, 12))
    assert start == utc(2026, 9, 6, 4)
    assert start.astimezone(ZoneInfo("America/Santiago")).hour == 1
    assert end == utc(2026, 9, 7, 3)


@pytest.mark.parametrize(
    ("period", "at"),
    [("day", utc(2026, 3, 29, 5)), ("week", utc(2026, 3, 29, 5)), ("month", utc(2026, 10, 25, 1, 30))],
)
def test_windows_tile_time_without_gaps(period: str, at: datetime) -> None:
    start, end = period_window(period, "Europe/Berlin", at)
    assert end is not None
    assert start <= at < end
    assert period_window(period, "Europe/Berlin", end)[0] == end
    assert period_window(period, "Europe/Berlin", end - timedelta(microseconds=1))[1] == end
    key = window(period, "Europe/Berlin", at.timestamp())
    assert window_of_key(period, "Europe/Berlin", key.key) == key


def test_lifetime() -> None:
    assert period_window("lifetime", "UTC", utc(2026, 1, 1)) == (utc(1970, 1, 1), None)
    assert window("lifetime", "UTC", 0).key == "life"
