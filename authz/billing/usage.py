"""One customer's usage in one period, summed from the rollups (never the raw events).

A period built in ``billing_usage`` (:mod:`authz.billing.rollup`) is one grouped query over its
rows (one per agent, event type and dimension tuple). Otherwise:

The period ``[start, end)`` is cut into pieces by :func:`authz.metering.usage.plan`: hourly rollups
at the edges, daily ones in between, monthly ones for whole calendar months; each piece is one
``SELECT ... WHERE customer = :c AND <bucket> IN [lo, hi) GROUP BY agent, type, <dimensions>`` on
the ``(customer, bucket)`` index. Prorated seats also read agent-days from the daily pieces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, select, text

from authz.billing import outcomes
from authz.billing.components import FILTER_DIMS
from authz.billing.periods import Period
from authz.billing.rollup import hours, is_built
from authz.billing.usage_rows import SUMS, Table, Usage
from authz.metering.sink import DAILY, ROLLUPS
from authz.metering.usage import plan

HOUR = 3600
AS_OF = text("SELECT max(occurred_at_ms) FROM metering_events")  # the newest flushed event (indexed)


def _pieces(period: Period) -> list[Any]:
    lo = period.start // HOUR * HOUR
    hi = -(-period.end // HOUR) * HOUR
    return plan(lo, hi, "month")


def _sums_sql(names: Sequence[str]) -> str:
    return ", ".join(f"CAST(sum({s}) AS BIGINT)" for s in names)  # PostgreSQL sums BIGINT as NUMERIC otherwise


@lru_cache(maxsize=64)
def _sum_sql(table: str, key: str, dims: tuple[str, ...], names: tuple[str, ...]) -> TextClause:
    """One piece's query as plain SQL text, built once (names from our own models, values bound)."""
    keys = ", ".join(("agent", "type", *dims))
    sums = _sums_sql(names)
    return text(
        f"SELECT {keys}, {sums} FROM {table} "  # noqa: S608 - identifiers are ours, values are bound
        f"WHERE customer = :customer AND {key} >= :lo AND {key} < :hi GROUP BY {keys}"
    )


def _sum_piece(conn: Connection, piece: Any, customer: str, dims: Sequence[str], names: Sequence[str]) -> list[Any]:
    table, start, end = piece
    key = table.primary_key.columns.keys()[0]
    query = _sum_sql(table.name, key, tuple(dims), tuple(names))
    return list(conn.execute(query, {"customer": customer, "lo": start, "hi": end}).all())


@lru_cache(maxsize=64)
def _built_sql(dims: tuple[str, ...], names: tuple[str, ...]) -> TextClause:
    keys = ", ".join(("agent", "type", *dims))
    sums = _sums_sql(names)
    return text(
        f"SELECT {keys}, {sums} FROM billing_usage "  # noqa: S608 - identifiers are ours, values are bound
        f"WHERE subscription_id = :s AND period_start = :p GROUP BY {keys}"
    )


def _agent_days(conn: Connection, pieces: list[Any], customer: str) -> dict[str, int]:
    """Distinct UTC days each agent had any event in, over the pieces."""
    days: dict[str, set[int]] = {}
    for table, start, end in pieces:
        key = table.c[table.primary_key.columns.keys()[0]]
        day = ROLLUPS.c.day if table is ROLLUPS else DAILY.c.day if table is DAILY else None
        if day is None:  # a whole month from the monthly table: read its days from the daily one
            table, key, day = DAILY, DAILY.c.day, DAILY.c.day
        query = select(table.c.agent, day).where(table.c.customer == customer, key >= start, key < end).distinct()
        for agent, d in conn.execute(query):
            days.setdefault(agent, set()).add(int(d))
    return {agent: len(ds) for agent, ds in days.items()}


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What closing a batch of periods reads once for all of them instead of once per invoice."""

    as_of_ms: int | None  # the newest flushed event
    built: Mapping[tuple[str, int], list[Any]]  # (subscription, period start) -> built rows by every dimension
    invoiced: frozenset[str]  # customers with any invoice (the others have no closed period to adjust)


ALL_DIMS = tuple(FILTER_DIMS)
_KEYS = ", ".join(("subscription_id", "period_start", "agent", "type", *ALL_DIMS))
BUILT_OF = text(
    f"SELECT {_KEYS}, {_sums_sql(SUMS)} FROM billing_usage "  # noqa: S608
    f"WHERE subscription_id IN :subs GROUP BY {_KEYS}"
).bindparams(bindparam("subs", expanding=True))
PERIODS_OF = text(
    "SELECT subscription_id, period_start, period_end FROM billing_usage_periods WHERE subscription_id IN :subs"
).bindparams(bindparam("subs", expanding=True))
INVOICED = text("SELECT DISTINCT customer_id FROM billing_invoices WHERE customer_id IN :cs").bindparams(
    bindparam("cs", expanding=True)
)


def prefetch(conn: Connection, periods: Sequence[tuple[str, str, Period]]) -> Prefetched:
    """For (customer, subscription, period) items: the newest event, every built period's usage rows,
    and which customers were ever invoiced; four queries whatever the number of items."""
    subs = sorted({sub for _c, sub, _p in periods})
    if not subs:
        return Prefetched(None, {}, frozenset())
    wanted = {(sub, p.start): p.end for _c, sub, p in periods}
    built_ends = {(s, int(ps)): int(pe) for s, ps, pe in conn.execute(PERIODS_OF, {"subs": subs})}
    built: dict[tuple[str, int], list[Any]] = {key: [] for key, end in wanted.items() if built_ends.get(key) == end}
    for row in conn.execute(BUILT_OF, {"subs": subs}):
        rows = built.get((row[0], int(row[1])))
        if rows is not None:
            rows.append(row[2:])
    customers = sorted({c for c, _s, _p in periods})
    invoiced = frozenset(conn.execute(INVOICED, {"cs": customers}).scalars())
    as_of = conn.execute(AS_OF).scalar()
    return Prefetched(None if as_of is None else int(as_of), built, invoiced)


def _project(rows: list[Any], dims: Sequence[str]) -> list[Any]:
    """Rows by every dimension as (agent, type, *dims, *sums) rows (summed again by the caller)."""
    at = [2 + ALL_DIMS.index(d) for d in dims]
    n = 2 + len(ALL_DIMS)
    return [(r[0], r[1], *(r[i] for i in at), *r[n:]) for r in rows]


def customer_usage(
    conn: Connection,
    customer: str,
    period: Period,
    *,
    dims: Sequence[str] = FILTER_DIMS,
    sums: Sequence[str] = SUMS,
    with_agent_days: bool = False,
    subscription_id: str | None = None,
    with_outcomes: bool = False,
    known: Prefetched | None = None,
) -> Usage:
    """The summed rollups of ``customer`` in ``period`` by (agent, type, ``dims``), the ``sums`` only
    (every sum with ``known``); from the subscription's built period usage when there is one
    (``known``: as read for a batch)."""
    pieces = _pieces(period)
    if known is not None and subscription_id is not None and not with_outcomes and not with_agent_days:
        rows = known.built.get((subscription_id, period.start))
        if rows is not None:
            return _usage([_project(rows, dims), []], dims, SUMS, {}, known.as_of_ms, ())
    built = subscription_id is not None and is_built(conn, subscription_id, period)
    outcome_rows: tuple[outcomes.OutcomeRow, ...] = ()
    if with_outcomes:
        lo, hi = hours(period)
        outcome_rows = outcomes.read(conn, customer, subscription_id or "", period.start, lo, hi, built)
    if subscription_id is not None and built:
        query = _built_sql(tuple(dims), tuple(sums))
        parts = [conn.execute(query, {"s": subscription_id, "p": period.start}).all()]
    else:
        parts = [_sum_piece(conn, piece, customer, dims, sums) for piece in pieces]
    agent_days = _agent_days(conn, pieces, customer) if with_agent_days else {}
    as_of = conn.execute(AS_OF).scalar()
    return _usage(parts, dims, sums, agent_days, None if as_of is None else int(as_of), outcome_rows)


def _usage(
    parts: list[Sequence[Any]],
    dims: Sequence[str],
    sums: Sequence[str],
    agent_days: dict[str, int],
    as_of_ms: int | None,
    outcome_rows: tuple[outcomes.OutcomeRow, ...],
) -> Usage:
    """:class:`Usage` from row lists of (agent, type, *dims, *sums): one list as it comes (a grouped
    query: unique per key already, no object made per row), several merged per key."""
    rows: Sequence[Sequence[Any]]
    if len(parts) == 1:
        rows = parts[0]
    else:
        n = 2 + len(dims)
        merged: dict[tuple[Any, ...], list[Any]] = {}
        for part in parts:
            for row in part:
                k = tuple(row[:n])
                acc = merged.get(k)
                if acc is None:
                    merged[k] = list(row)
                else:
                    acc[n:] = [a + b for a, b in zip(acc[n:], row[n:], strict=True)]
        rows = list(merged.values())
    table = Table(tuple(dims), tuple(sums), rows)
    return Usage(agent_days=agent_days, as_of_ms=as_of_ms, outcomes=outcome_rows, table=table)
