"""Daily and monthly rollups: the query plan covers exactly the hours asked, and answers equal brute force."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from authz.metering import MeteringService
from authz.metering.sink import DAILY, MONTHLY, ROLLUPS, SUMS
from authz.metering.usage import DAY, HOUR, plan
from authz.storage.db import make_engine
from tests.authz.metering.conftest import event, tokens

T0 = int(datetime(2026, 9, 20, tzinfo=UTC).timestamp())  # a range over three month boundaries
HOURS = 24 * 130


def _num(*parts: object) -> int:
    """A deterministic pseudo-random number from ``parts`` (the tests stay reproducible)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def _month(seconds: int) -> int:
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


@given(lo=st.integers(0, HOURS), length=st.integers(1, HOURS), granularity=st.sampled_from(["hour", "day", "month"]))
def test_plan_covers_each_hour_once_with_whole_periods(lo: int, length: int, granularity: str) -> None:
    start, end = T0 + lo * HOUR, T0 + (lo + length) * HOUR
    covered: list[int] = []
    for table, a, b in plan(start, end, granularity):
        assert a < b
        if table is ROLLUPS:
            covered += range(a, b, HOUR)
        elif table is DAILY:
            assert a % DAY == 0 and b % DAY == 0 and granularity != "hour"
            covered += range(a, b, HOUR)
        else:
            assert table is MONTHLY and granularity == "month"
            assert _month(a) == a and _month(b) == b
            covered += range(a, b, HOUR)
    assert covered == list(range(start, end, HOUR))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def filled(request: pytest.FixtureRequest) -> Iterator[tuple[MeteringService, list[dict[str, Any]]]]:
    """~1,500 events over 100 days (from 2026-09-20), ingested and flushed in daily steps."""
    engine = make_engine(request.getfixturevalue(f"{request.param}_url"))
    now = [float(T0)]
    svc = MeteringService(engine, clock=lambda: now[0])
    sent: list[dict[str, Any]] = []
    try:
        for day in range(100):
            now[0] = T0 + (day + 1) * DAY
            batch = []
            for i in range(_num(day) % 31):
                at_ms = (T0 + day * DAY + _num(day, i, "at") % DAY) * 1000
                common = {"agent": f"a{_num(day, i, 'a') % 2}", "team": f"t{_num(day, i, 't') % 3}"}
                if _num(day, i, "kind") % 2:
                    ev = tokens(f"d{day}-{i}", at_ms, model=["gpt-4o", "gpt-4o-mini"][_num(day, i, "m") % 2])
                    ev["usage"]["input_tokens"] = 1 + _num(day, i, "n") % 5000
                else:
                    ev = event(f"d{day}-{i}", at_ms, latency_ms=_num(day, i, "l") % 900)
                ev.update(common)
                batch.append(ev)
            assert svc.ingest(batch).accepted == len(batch)
            svc.flush()
            sent += batch
        yield svc, sent
    finally:
        engine.dispose()


def test_coarse_tables_equal_the_hourly_sums(filled: tuple[MeteringService, list[dict[str, Any]]]) -> None:
    svc, _ = filled
    sums = ", ".join(f"sum({c})" for c in SUMS)
    with svc.engine.connect() as conn:
        for table, key in ((DAILY, "day"), (MONTHLY, "month")):
            hourly = conn.execute(
                sa.text(f"SELECT {key}, dims_key, {sums} FROM metering_rollups GROUP BY {key}, dims_key")
            ).all()
            coarse = conn.execute(sa.text(f"SELECT {key}, dims_key, {sums} FROM {table.name} GROUP BY {key}, dims_key"))
            assert sorted((r[0], r[1], *map(int, r[2:])) for r in coarse) == sorted(
                (r[0], r[1], *map(int, r[2:])) for r in hourly
            )


def _period(at_ms: int, granularity: str) -> str:
    seconds = at_ms // 1000
    start = {"hour": seconds // HOUR * HOUR, "day": seconds // DAY * DAY, "month": _month(seconds)}[granularity]
    return datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_usage_over_months_equals_brute_force(
    filled: tuple[MeteringService, list[dict[str, Any]]], granularity: str
) -> None:
    svc, sent = filled
    with svc.engine.connect() as conn:
        costs: dict[Any, Any] = dict(
            conn.execute(sa.text("SELECT idempotency_id, cost_pusd FROM metering_events")).all()
        )
    oct1, dec1 = (int(datetime(2026, m, 1, tzinfo=UTC).timestamp()) for m in (10, 12))
    # Months whole and cut at both ends, whole months only, months plus a second each side, one day.
    ranges = [(T0 + 5400, T0 + 99 * DAY + 5 * HOUR + 7), (oct1, dec1), (oct1 - 1, dec1 + 1), (oct1 + HOUR, oct1 + DAY)]
    for k in range(4):
        start = T0 + _num(granularity, k) % (100 * DAY)
        ranges.append((start, start + 1 + _num(granularity, k, "len") % (100 * DAY)))
    for k, (start, end) in enumerate(ranges):
        group_by = [[], ["team"], ["agent", "type"]][k % 3]
        expected: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
        for ev in sent:
            at_ms = int(datetime.fromisoformat(ev["timestamp"]).timestamp() * 1000)
            if not start // HOUR * HOUR <= at_ms // 1000 // HOUR * HOUR < end:
                continue
            acc = expected[(_period(at_ms, granularity), *(ev[g] for g in group_by))]
            acc[0] += 1
            acc[1] += ev.get("latency_ms", 0)
            acc[2] += costs[ev["id"]] or 0
        rows = svc.usage(start, end, granularity, group_by)
        got = {(r["period"], *(r[g] for g in group_by)): [r["count"], r["latency_ms"], r["cost_pusd"]] for r in rows}
        assert got == dict(expected)
        assert [(r["period"], *(r[g] for g in group_by)) for r in rows] == sorted(got)
