"""Billing usage per period: each subscription period's usage summed once, then kept current by the flusher.

An invoice preview over the metering rollups reads every day (or hour) of its period: for a period
that is not a calendar month (an anniversary anchor, a time zone) that is ~30 rows per agent and
dimension tuple, grouped at read time. Instead, ``billing_usage`` holds one row per (subscription,
period start, dimension tuple): a month of any anchor is one row per (agent, event type,
dimensions), and a preview reads only those.

* **Build** (:func:`build`): the period's rows are summed from the metering rollups (the same hour
  buckets the preview would read: the start floored, the end rounded up to the hour) and the period
  is marked built (``billing_usage_periods``), under the metering flusher's lock.
* **Keep** (:class:`UsageKeeper`, the sink's ``on_rolled_up`` hook): every flush adds the hourly
  deltas it wrote to the metering rollups to each built period whose hours hold them, in the flush's
  own transaction; a flush that meets an event of a subscription period not yet built builds it
  then (the metering rollups already hold the flush's events, so those are not added twice).
  Outcome counts by attribute set (:mod:`authz.billing.outcomes`, for plan triggers) are rolled up
  and kept per built period the same way.

So a built period always equals the sum of the metering rollups of its hours; a period never built
is read from the metering rollups directly (:mod:`authz.billing.usage`): same numbers, slower.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, TextClause, bindparam, text

from authz.billing import outcomes
from authz.billing.periods import Period, period_at
from authz.billing.plans import PlanSpec, parse_spec
from authz.metering import bulk
from authz.metering.sink import DIMS, FLUSH_LOCK_KEY, ROLLUP_COLUMNS
from authz.metering.sink import SUMS as METERING_SUMS
from authz.metering.usage import plan
from authz.storage.models.billing import BillingUsage, BillingUsagePeriod

HOUR = 3600
USAGE = cast(Table, BillingUsage.__table__)
PERIODS = cast(Table, BillingUsagePeriod.__table__)
DIM_NAMES = tuple(d for d in DIMS if d != "customer")
SUM_NAMES = tuple(s for s in METERING_SUMS if s != "latency_ms")
USAGE_COLUMNS = ("subscription_id", "period_start", "dims_key", *DIM_NAMES, *SUM_NAMES)
PERIOD_COLUMNS = ("subscription_id", "period_start", "period_end", "customer_id", "lo", "hi", "built_at")
# Positions in a metering hourly rollup row (``ROLLUP_COLUMNS``).
_AT = {name: i for i, name in enumerate(ROLLUP_COLUMNS)}
BUCKET, DIGEST, CUSTOMER = _AT["bucket"], _AT["dims_key"], _AT["customer"]
DIM_AT = tuple(_AT[d] for d in DIM_NAMES)
SUM_AT = tuple(_AT[s] for s in SUM_NAMES)
MARKS = text(
    "SELECT subscription_id, period_start, customer_id, lo, hi FROM billing_usage_periods "
    "WHERE customer_id IN :cs AND hi > :lo AND lo <= :hi"
).bindparams(bindparam("cs", expanding=True))
SUBSCRIPTIONS = text(
    "SELECT s.customer_id, s.id, s.plan_version_id, s.starts_at, s.ends_at, c.timezone, v.spec "
    "FROM billing_subscriptions s JOIN billing_customers c ON c.id = s.customer_id "
    "JOIN billing_plan_versions v ON v.id = s.plan_version_id WHERE s.customer_id IN :cs"
).bindparams(bindparam("cs", expanding=True))
CHUNK = 500  # customers per IN list
BUILT = text("SELECT period_end FROM billing_usage_periods WHERE subscription_id = :s AND period_start = :p")


def hours(period: Period) -> tuple[int, int]:
    """The hour buckets ``[lo, hi)`` a period reads: its start floored, its end rounded up."""
    return period.start // HOUR * HOUR, -(-period.end // HOUR) * HOUR


@lru_cache(maxsize=16)
def _piece_sql(table: str, key: str) -> TextClause:
    dims = ", ".join(DIM_NAMES)
    sums = ", ".join(f"CAST(sum({s}) AS BIGINT)" for s in SUM_NAMES)  # PostgreSQL sums BIGINT as NUMERIC
    return text(
        f"SELECT dims_key, {dims}, {sums} FROM {table} "  # noqa: S608 - identifiers are ours, values bound
        f"WHERE customer = :c AND {key} >= :lo AND {key} < :hi GROUP BY dims_key, {dims}"
    )


def lock(conn: Connection) -> None:
    """Take the metering flusher's lock in ``conn``'s transaction (SQLite: its write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FLUSH_LOCK_KEY})
    else:
        conn.execute(text("UPDATE metering_rollups SET count = count WHERE 1 = 0"))


def build(conn: Connection, subscription_id: str, customer: str, period: Period, now: int) -> bool:
    """Sum the period's metering rollups into ``billing_usage`` and mark it built; False if it was
    built already. The caller holds the flusher's lock (:func:`lock`, or is the flush)."""
    if conn.execute(BUILT, {"s": subscription_id, "p": period.start}).first() is not None:
        return False
    lo, hi = hours(period)
    merged: dict[str, list[Any]] = {}
    n = 1 + len(DIM_NAMES)
    for table, start, end in plan(lo, hi, "month"):
        key = table.primary_key.columns.keys()[0]
        for row in conn.execute(_piece_sql(table.name, key), {"c": customer, "lo": start, "hi": end}):
            have = merged.get(row[0])
            if have is None:
                merged[row[0]] = list(row)
            else:
                have[n:] = [a + b for a, b in zip(have[n:], row[n:], strict=True)]
    meta = (subscription_id, period.start, period.end, customer, lo, hi, now)
    bulk.insert(conn, PERIODS, PERIOD_COLUMNS, [meta], conflict=())
    rows = [(subscription_id, period.start, *merged[k]) for k in sorted(merged)]
    bulk.insert(conn, USAGE, USAGE_COLUMNS, rows, conflict=("subscription_id", "period_start", "dims_key"))
    outcomes.build(conn, subscription_id, customer, period.start, lo, hi)
    return True


def build_now(engine: Engine, subscription_id: str, customer: str, period: Period, now: int) -> bool:
    """:func:`build` in its own transaction, under the flusher's lock."""
    with engine.begin() as conn:
        lock(conn)
        return build(conn, subscription_id, customer, period, now)


def is_built(conn: Connection, subscription_id: str, period: Period) -> bool:
    end = conn.execute(BUILT, {"s": subscription_id, "p": period.start}).scalar()
    return end is not None and int(end) == period.end


class UsageKeeper:
    """The sink's ``on_rolled_up`` hook: adds each flush's hourly deltas to the built periods."""

    def __init__(self) -> None:
        self._specs: dict[str, PlanSpec] = {}  # plan versions never change: parsed once

    def _spec(self, version_id: str, raw: Any) -> PlanSpec:
        spec = self._specs.get(version_id)
        if spec is None:
            spec = self._specs[version_id] = parse_spec(raw if isinstance(raw, dict) else json.loads(raw))
        return spec

    def _open(
        self, conn: Connection, customer: str, subs: Sequence[Sequence[Any]], buckets: set[int], now: int
    ) -> set[tuple[str, int]]:
        """Build the subscription periods holding ``buckets``; returns those built now."""
        built: set[tuple[str, int]] = set()
        for bucket in sorted(buckets):
            for _customer, sub_id, version_id, starts_at, ends_at, tz, raw in subs:
                if not (starts_at <= bucket and (ends_at is None or bucket < ends_at)):
                    continue
                spec = self._spec(version_id, raw)
                period = period_at(
                    bucket, interval=spec.interval, anchor=spec.anchor, tz=tz, subscription_start=starts_at
                )
                if (sub_id, period.start) not in built and build(conn, sub_id, customer, period, now):
                    built.add((sub_id, period.start))
        return built

    def __call__(
        self, conn: Connection, hourly: Sequence[Sequence[Any]], events: Sequence[Sequence[Any]], now_ms: int
    ) -> None:
        outcome_rows: dict[str, list[tuple[Any, ...]]] = {}
        for o in outcomes.roll(conn, events):  # (bucket, customer, ...): hourly outcome deltas
            outcome_rows.setdefault(o[1], []).append(o)
        by_customer: dict[str, list[Sequence[Any]]] = {}
        for row in hourly:
            if row[CUSTOMER]:
                by_customer.setdefault(row[CUSTOMER], []).append(row)
        acc: dict[tuple[str, int, str], list[Any]] = {}
        kept_outcomes: list[tuple[tuple[str, int], Sequence[Any]]] = []
        if not by_customer:
            return
        lo = min(r[BUCKET] for r in hourly)
        hi = max(r[BUCKET] for r in hourly)
        marks_of = _grouped(conn, MARKS, sorted(by_customer), {"lo": lo, "hi": hi}, at=2)
        uncovered_of = {
            customer: {r[BUCKET] for r in rows if not any(m[3] <= r[BUCKET] < m[4] for m in marks_of.get(customer, ()))}
            for customer, rows in by_customer.items()
        }
        subs_of = _grouped(conn, SUBSCRIPTIONS, sorted(c for c, u in uncovered_of.items() if u), {}, at=0)
        for customer, rows in sorted(by_customer.items()):
            marks = marks_of.get(customer, [])
            uncovered = uncovered_of[customer]
            subs = subs_of.get(customer, [])
            fresh = self._open(conn, customer, subs, uncovered, now_ms // 1000) if uncovered and subs else set()
            marks = [m for m in marks if (m[0], m[1]) not in fresh]
            for o in outcome_rows.get(customer, ()):
                kept_outcomes += [((m[0], m[1]), o) for m in marks if m[3] <= o[0] < m[4]]
            for r in rows:
                for sub_id, start, _c, m_lo, m_hi in marks:
                    if m_lo <= r[BUCKET] < m_hi:
                        key = (sub_id, start, r[DIGEST])
                        have = acc.get(key)
                        sums = [r[i] for i in SUM_AT]
                        if have is None:
                            acc[key] = [*(r[i] for i in DIM_AT), *sums]
                        else:
                            have[len(DIM_AT) :] = [a + b for a, b in zip(have[len(DIM_AT) :], sums, strict=True)]
        if acc:
            rows_out = [(*key, *values) for key, values in sorted(acc.items())]  # a fixed order: no deadlocks
            keys = ("subscription_id", "period_start", "dims_key")
            bulk.insert(conn, USAGE, USAGE_COLUMNS, rows_out, conflict=keys, add=SUM_NAMES)
        if kept_outcomes:
            outcomes.keep(conn, kept_outcomes)


def _grouped(
    conn: Connection, query: TextClause, customers: list[str], params: dict[str, Any], at: int
) -> dict[str, list[tuple[Any, ...]]]:
    """``query`` over ``customers`` (IN lists of :data:`CHUNK`), its rows grouped by column ``at``."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(0, len(customers), CHUNK):
        for row in conn.execute(query, {**params, "cs": customers[i : i + CHUNK]}):
            out.setdefault(row[at], []).append(tuple(row))
    return out
