"""Usage queries over the hourly rollups: time range, granularity, group-by, filters, exact cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from authz.metering.pricing import format_usd
from authz.metering.sink import ROLLUPS, SUMS

GROUPS = ("agent", "team", "workflow", "customer", "model", "provider", "mcp_server", "tool", "type", "unit")
GRANULARITIES = {"hour": "bucket", "day": "day", "month": "month"}


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
    period = ROLLUPS.c[GRANULARITIES[granularity]]
    where: list[ColumnElement[bool]] = [ROLLUPS.c.bucket >= lo, ROLLUPS.c.bucket < hi]
    for name, value in (filters or {}).items():
        if name not in GROUPS:
            raise UsageQueryError(f"cannot filter by {name!r}; choose from {', '.join(GROUPS)}")
        values = [value] if isinstance(value, str) else list(value)
        where.append(ROLLUPS.c[name].in_(values))
    keys = [period.label("period"), *(ROLLUPS.c[g] for g in group_by)]
    sums = [func.sum(ROLLUPS.c[s]).label(s) for s in SUMS]
    stmt = select(*keys, *sums).where(*where).group_by(*keys).order_by(*keys)
    with engine.connect() as conn:
        result = conn.execute(stmt).all()
    rows = []
    for r in result:
        m = r._mapping
        row: dict[str, Any] = {"period": iso(int(m["period"]))}
        row.update({g: m[g] for g in group_by})
        row.update({s: int(m[s]) for s in SUMS})
        row["cost_usd"] = format_usd(row["cost_pusd"]) if row["priced"] else None
        rows.append(row)
    return rows
