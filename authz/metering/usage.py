"""Usage queries over the rollups: time range, granularity, group-by, filters, exact cost.

Hourly rows answer hourly queries. A daily or monthly query reads whole days from the daily
rollups and whole months from the monthly ones, and only the partial periods at its edges from the
finer tables (:func:`plan`); the pieces are summed per (period, group). Over 90 days that is ~24x
(days) or ~700x (months) fewer rows than summing hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, Table, func, select

from authz.metering.pricing import format_usd
from authz.metering.sink import DAILY, MONTHLY, ROLLUPS, SUMS

GROUPS = ("agent", "team", "workflow", "customer", "model", "provider", "mcp_server", "tool", "type", "unit")
GRANULARITIES = {"hour": "bucket", "day": "day", "month": "month"}
HOUR, DAY = 3600, 86_400
LAST_MONTH = int(datetime(9999, 12, 1, tzinfo=UTC).timestamp())  # datetime's last month (ranges may reach past it)
Piece = tuple[Table, int, int]  # a rollup table and a [start, end) range of its key column


class UsageQueryError(ValueError):
    """A bad query parameter; the message names it."""


def _seconds(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UsageQueryError("start and end need a time zone (UTC is assumed nowhere)")
        return int(value.timestamp())
    return int(value)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(seconds: int) -> int:
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def _next_month(month: int) -> int:
    dt = datetime.fromtimestamp(month, tz=UTC)
    return int(datetime(dt.year + dt.month // 12, dt.month % 12 + 1, 1, tzinfo=UTC).timestamp())


def plan(lo: int, hi: int, granularity: str) -> list[Piece]:
    """Pieces that cover exactly the hour buckets in ``[lo, hi)`` (whole hours), each from the coarsest
    table whose periods fit whole: hours at the edges, then days, then months in the middle."""
    if granularity == "hour":
        return [(ROLLUPS, lo, hi)]
    d0, d1 = -(-lo // DAY) * DAY, hi // DAY * DAY  # first and last whole-day boundaries inside
    if d0 >= d1:
        return [(ROLLUPS, lo, hi)]
    middle: list[Piece] = [(DAILY, d0, d1)]
    if granularity == "month" and d0 < LAST_MONTH:
        m0 = d0 if _month_start(d0) == d0 else _next_month(d0)
        m1 = _month_start(min(d1, LAST_MONTH))
        if m0 < m1:
            middle = [(DAILY, d0, m0), (MONTHLY, m0, m1), (DAILY, m1, d1)]
    return [piece for piece in ((ROLLUPS, lo, d0), *middle, (ROLLUPS, d1, hi)) if piece[1] < piece[2]]


def _query(
    conn: Connection, piece: Piece, granularity: str, group_by: list[str], filters: dict[str, list[str]]
) -> list[Row[Any]]:
    table, start, end = piece
    key = table.c[table.primary_key.columns.keys()[0]]  # bucket, day or month
    where: list[ColumnElement[bool]] = [key >= start, key < end]
    where += [table.c[name].in_(values) for name, values in filters.items()]
    keys = [table.c[GRANULARITIES[granularity]].label("period"), *(table.c[g] for g in group_by)]
    sums = [func.sum(table.c[s]).label(s) for s in SUMS]
    return list(conn.execute(select(*keys, *sums).where(*where).group_by(*keys).order_by(*keys)).all())


def usage(
    engine: Engine,
    start: datetime | int,
    end: datetime | int,
    granularity: str = "hour",
    group_by: Sequence[str] = (),
    filters: Mapping[str, str | Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Totals per period (and per group) for hours starting in ``[floor_hour(start), end)``.

    Resolution is the hour: ``start`` is floored to its hour. Periods are UTC hours, days or calendar
    months. Each row has ``period`` (RFC 3339), the group-by dimensions, the sums (``count``,
    ``quantity``, token sums, ``latency_ms``), ``cost_usd`` (exact decimal text summed over the
    ``priced`` events; None when none was priced), ``cost_pusd`` (1e-12 USD) and ``unpriced`` (token
    events without a price: when it is not 0 the cost is incomplete, never silently 0).
    """
    if granularity not in GRANULARITIES:
        raise UsageQueryError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise UsageQueryError(f"cannot group by {unknown[0]!r}; choose from {', '.join(GROUPS)}")
    group_by = list(dict.fromkeys(group_by))
    lo = _seconds(start) // 3600 * 3600
    hi = _seconds(end)
    if hi <= lo:
        raise UsageQueryError("end must be after start")
    wanted: dict[str, list[str]] = {}
    for name, value in (filters or {}).items():
        if name not in GROUPS:
            raise UsageQueryError(f"cannot filter by {name!r}; choose from {', '.join(GROUPS)}")
        wanted[name] = [value] if isinstance(value, str) else list(value)
    pieces = plan(lo, -(-hi // HOUR) * HOUR, granularity)  # buckets b < hi <=> b < hi rounded up to the hour
    with engine.connect() as conn:
        results = [_query(conn, piece, granularity, group_by, wanted) for piece in pieces]
    result: Sequence[Sequence[Any]] = results[0]
    if len(results) > 1:  # sum the pieces per (period, group); same order as one query's ORDER BY
        merged: dict[tuple[Any, ...], list[int]] = {}
        n = 1 + len(group_by)
        for part in results:
            for got in part:
                acc = merged.get(tuple(got[:n]))
                if acc is None:
                    merged[tuple(got[:n])] = [int(v) for v in got[n:]]
                else:
                    acc[:] = [a + int(v) for a, v in zip(acc, got[n:], strict=True)]
        result = [(*k, *v) for k, v in sorted(merged.items())]
    # Rows by position, periods formatted once each: an hourly query can return every rollup row.
    periods: dict[int, str] = {}
    n_keys = 1 + len(group_by)
    cost_at, priced_at = SUMS.index("cost_pusd"), SUMS.index("priced")
    rows = []
    for r in result:
        label = periods.get(r[0])
        if label is None:
            label = periods[r[0]] = iso(int(r[0]))
        totals = [int(v) for v in r[n_keys:]]
        row: dict[str, Any] = {"period": label, **dict(zip(group_by, r[1:n_keys], strict=True))}
        row.update(zip(SUMS, totals, strict=True))
        row["cost_usd"] = format_usd(totals[cost_at]) if totals[priced_at] else None
        rows.append(row)
    return rows
