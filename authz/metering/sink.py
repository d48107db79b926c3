"""The SQL sink: buffered events -> ``metering_events`` + ``metering_rollups`` in ONE transaction.

Exactly-once in effect: events are inserted ``ON CONFLICT (idempotency_id) DO NOTHING RETURNING``
and only the rows actually inserted are added to the rollups, in the same transaction. A flush
retried after a crash (the buffer still holds the batch) therefore inserts nothing twice and adds
nothing twice. One flusher at a time: the transaction starts by taking a PostgreSQL transaction
advisory lock, or SQLite's write lock (SQLite has one writer anyway).

Speed: events are built straight from the buffered JSON arrays, priced through the
:class:`~authz.metering.pricing.PriceBook` caches, and written with :mod:`authz.metering.bulk` (one
statement per table per chunk); each distinct price's provenance is written once
(``metering_prices``), and each event names it by ``price_id``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, text

from authz.metering import bulk
from authz.metering.events import PAYLOAD, TOKENS
from authz.metering.pricing import PriceBook, Priced, usd_text
from authz.storage.models.metering import (
    MeteringEvent,
    MeteringPrice,
    MeteringRollup,
    MeteringRollupDaily,
    MeteringRollupMonthly,
)

DIMS = ("type", "agent", "team", "workflow", "customer", "mcp_server", "tool", "provider", "model", "unit")
SUMS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_ms",
    "cost_pusd",
    "priced",
    "unpriced",
)
FLUSH_LOCK_KEY = 0x6D65746572  # "meter": the PostgreSQL advisory lock of the metering flusher
LOCK = text("SELECT pg_advisory_xact_lock(:k)")
SQLITE_WRITE_LOCK = "UPDATE metering_rollups SET count = count WHERE 1 = 0"
EVENTS = cast(Table, MeteringEvent.__table__)
ROLLUPS = cast(Table, MeteringRollup.__table__)
DAILY = cast(Table, MeteringRollupDaily.__table__)
MONTHLY = cast(Table, MeteringRollupMonthly.__table__)
PRICES = cast(Table, MeteringPrice.__table__)
# An event row: the payload's values (``id`` stored as ``idempotency_id``) but metadata, then these.
EVENT_COLUMNS = (
    "idempotency_id",
    *PAYLOAD[1:-1],
    "cost_usd",
    "cost_pusd",
    "cost_reason",
    "price_id",
    "metadata",
    "received_at_ms",
    "flushed_at_ms",
)
ROLLUP_COLUMNS = ("bucket", "dims_key", "day", "month", *DIMS, *SUMS)
DAILY_COLUMNS = ("day", "dims_key", "month", *DIMS, *SUMS)
MONTHLY_COLUMNS = ("month", "dims_key", *DIMS, *SUMS)
# Payload positions used below.
TYPE, AT, PROVIDER, MODEL, UNIT, QUANTITY, TOKENS_FROM, LATENCY, METADATA = (
    PAYLOAD.index(n)
    for n in (
        "type",
        "occurred_at_ms",
        "provider",
        "model",
        "unit",
        "quantity",
        "input_tokens",
        "latency_ms",
        "metadata",
    )
)
DIM_AT = tuple(PAYLOAD.index(d) for d in DIMS)
AGENT, TEAM, WORKFLOW = (PAYLOAD.index(n) for n in ("agent", "team", "workflow"))


@dataclass(frozen=True, slots=True)
class Staged:
    """One acknowledged event as the buffer holds it."""

    id: str
    payload: str
    received_at_ms: int


def spends(rows: Iterable[Sequence[Any]]) -> list[Spend]:
    """The token spend of newly counted event rows, summed per (agent, team, workflow)."""
    cost_at = EVENT_COLUMNS.index("cost_pusd")
    out: dict[tuple[str | None, str | None, str | None], list[int]] = {}
    for r in rows:
        if r[TYPE] != TOKENS:
            continue
        who = (r[AGENT] or None, r[TEAM] or None, r[WORKFLOW] or None)
        if who == (None, None, None):
            continue
        acc = out.get(who)
        if acc is None:
            acc = out[who] = [0, 0]
        acc[0] += r[QUANTITY]  # input + output tokens (or the unsplit total)
        acc[1] += r[cost_at] or 0
    return [(*who, tokens, cost) for who, (tokens, cost) in out.items()]


def unsplit(price: Callable[..., Priced], p: list[Any]) -> Priced:
    """A token total without an input/output split (the ``quantity`` alias): priced only when the
    model charges input and output tokens alike; otherwise unpriced, with the reason."""
    as_input = price(p[PROVIDER], p[MODEL], p[AT], p[QUANTITY], 0)
    if as_input.cost_usd is None:
        return as_input
    as_output = price(p[PROVIDER], p[MODEL], p[AT], 0, p[QUANTITY])
    if as_output.cost_usd != as_input.cost_usd:
        return Priced(None, None, "no input/output split and the model prices them differently", None)
    return as_input


def dims_key(dims: tuple[str, ...]) -> str:
    return hashlib.blake2b("\x1f".join(dims).encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=4096)
def calendar(bucket: int) -> tuple[int, int]:
    """(day start, month start) of an hour bucket, Unix seconds UTC."""
    dt = datetime.fromtimestamp(bucket, tz=UTC)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(day.timestamp()), int(day.replace(day=1).timestamp())


# What the newly counted ``tokens.consumed`` events of one principal add up to, per flush:
# (agent, team, workflow, tokens = input (cache included) + output, cost in pico-USD of priced events).
Spend = tuple[str | None, str | None, str | None, int, int]
OnCounted = Callable[[Connection, list[Spend], int], object]
# What one flush added: hourly rollup rows (``ROLLUP_COLUMNS`` order), the newly counted event rows
# (``EVENT_COLUMNS`` order), and the flush time.
OnRolledUp = Callable[[Connection, list[tuple[Any, ...]], list[list[Any]], int], object]


class Sink:
    def __init__(self, engine: Engine, pricebook: PriceBook | None = None) -> None:
        self.engine = engine
        self.pricebook = pricebook or PriceBook()
        self.postgres = engine.dialect.name == "postgresql"
        # Budgets (authz.budgets.metered) charge token and cost budgets from here, inside the flush's
        # transaction: the charge commits if and only if the events do (exactly once in effect).
        self.on_counted: OnCounted | None = None
        # Billing (authz.billing.rollup) adds the same hourly deltas to each billing period's usage,
        # in the same transaction: a period's usage commits if and only if the events do.
        self.on_rolled_up: OnRolledUp | None = None

    @contextlib.contextmanager
    def transaction(self, conn: Connection | None = None) -> Iterator[Connection]:
        """A transaction holding the flusher lock (blocks while another replica flushes), on ``conn``
        (which must have no transaction open) or on a new connection."""
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self.engine.connect())
            with conn.begin():
                if self.postgres:
                    conn.execute(LOCK, {"k": FLUSH_LOCK_KEY})
                else:  # a write that matches nothing still takes SQLite's RESERVED (write) lock now
                    conn.exec_driver_sql(SQLITE_WRITE_LOCK)
                yield conn

    def rows(
        self, staged: Sequence[Staged], now_ms: int
    ) -> tuple[dict[str, list[Any]], dict[str, tuple[dict[str, Any], int]]]:
        """Event rows (``EVENT_COLUMNS`` order) by id, and the price records they use by price id."""
        # One json.loads for the whole chunk: per call, the decoder's setup cost more than the parsing.
        decoded = json.loads(f"[{','.join([item.payload for item in staged])}]")
        return self.rows_of(decoded, [item.received_at_ms for item in staged], now_ms)

    def rows_of(
        self, payloads: Sequence[list[Any]], received: Sequence[int], now_ms: int
    ) -> tuple[dict[str, list[Any]], dict[str, tuple[dict[str, Any], int]]]:
        """:meth:`rows` of payload lists (:data:`PAYLOAD` order; each is turned into its row in place)."""
        rows: dict[str, list[Any]] = {}
        prices: dict[str, tuple[dict[str, Any], int]] = {}
        self.pricebook.refresh()
        price = self.pricebook.price
        for p, received_at_ms in zip(payloads, received, strict=True):
            eid = p[0]
            if eid in rows:
                continue
            if p[TYPE] != TOKENS:  # calls and outcomes: never priced here (the common case, kept short)
                meta = p[METADATA]
                p[METADATA:] = (None, None, None, None, None if meta is None else bulk.json_text(meta))
                p.append(received_at_ms)
                p.append(now_ms)
                rows[eid] = p
                continue
            cost_usd = cost_pusd = reason = price_id = None
            t = TOKENS_FROM
            if p[t] == p[t + 1] == 0 and p[QUANTITY] > 0:
                priced = unsplit(price, p)
            else:
                priced = price(p[PROVIDER], p[MODEL], p[AT], p[t], p[t + 1], p[t + 2], p[t + 3])
            if priced.cost_usd is not None:
                cost_usd, cost_pusd, price_id = usd_text(priced.cost_usd), priced.cost_pusd, priced.price_id
                if price_id is not None and priced.provenance is not None and price_id not in prices:
                    prices[price_id] = (priced.provenance, now_ms)
            reason = priced.reason
            rows[eid] = [
                *p[:METADATA],
                cost_usd,
                cost_pusd,
                reason,
                price_id,
                bulk.json_text(p[METADATA]),
                received_at_ms,
                now_ms,
            ]
        return rows, prices

    def write(self, conn: Connection, staged: Sequence[Staged], now_ms: int) -> int:
        """Insert the events not yet counted and add exactly those to the rollups; returns how many."""
        return len(self.insert(conn, *self.rows(staged, now_ms), now_ms))

    def count(self, conn: Connection, payloads: Sequence[list[Any]], now_ms: int) -> list[str]:
        """:meth:`write` for validated payload lists received now (SQLite's direct ingest, see
        :class:`~authz.metering.buffer.SqlBuffer`); returns the ids newly counted."""
        return self.insert(conn, *self.rows_of(payloads, [now_ms] * len(payloads), now_ms), now_ms)

    def insert(
        self,
        conn: Connection,
        rows: dict[str, list[Any]],
        prices: dict[str, tuple[dict[str, Any], int]],
        now_ms: int,
    ) -> list[str]:
        """Insert the event ``rows`` not yet counted, add exactly those to the rollups, return their ids."""
        if not rows:
            return []
        if prices:
            price_rows = [(pid, bulk.json_text(record), t) for pid, (record, t) in sorted(prices.items())]
            bulk.insert(conn, PRICES, ("price_id", "record", "first_seen_ms"), price_rows, conflict=("price_id",))
        inserted = bulk.copy_insert(
            conn, EVENTS, EVENT_COLUMNS, list(rows.values()), conflict=("idempotency_id",), returning="idempotency_id"
        )
        if not inserted:
            return []
        cost_at = EVENT_COLUMNS.index("cost_pusd")
        deltas: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for eid in inserted:
            r = rows[eid]
            key = (r[AT] // 3_600_000 * 3600, tuple([r[i] for i in DIM_AT]))
            acc = deltas.get(key)
            if acc is None:
                acc = deltas[key] = [0] * len(SUMS)
            acc[0] += 1
            acc[1] += r[QUANTITY]
            acc[2] += r[TOKENS_FROM]
            acc[3] += r[TOKENS_FROM + 1]
            acc[4] += r[TOKENS_FROM + 2]
            acc[5] += r[TOKENS_FROM + 3]
            acc[6] += r[LATENCY] or 0
            if r[cost_at] is not None:
                acc[7] += r[cost_at]
                acc[8] += 1
            elif r[TYPE] == TOKENS:
                acc[9] += 1
        if self.on_counted is not None:
            self.on_counted(conn, spends(rows[eid] for eid in inserted), now_ms)
        hourly: list[tuple[Any, ...]] = []
        daily: dict[tuple[Any, ...], tuple[tuple[str, ...], list[int]]] = {}
        monthly: dict[tuple[Any, ...], tuple[tuple[str, ...], list[int]]] = {}
        for (bucket, dims), sums in sorted(deltas.items()):  # a fixed order: no deadlocks between writers
            digest, (day, month) = dims_key(dims), calendar(bucket)
            hourly.append((bucket, digest, day, month, *dims, *sums))
            for coarse, at in ((daily, (day, digest, month)), (monthly, (month, digest))):
                have = coarse.get(at)
                if have is None:
                    coarse[at] = (dims, list(sums))
                else:
                    have[1][:] = [a + b for a, b in zip(have[1], sums, strict=True)]
        bulk.insert(conn, ROLLUPS, ROLLUP_COLUMNS, hourly, conflict=("bucket", "dims_key"), add=SUMS)
        for table, columns, coarse in ((DAILY, DAILY_COLUMNS, daily), (MONTHLY, MONTHLY_COLUMNS, monthly)):
            totals = [(*at, *dims, *sums) for at, (dims, sums) in sorted(coarse.items())]
            bulk.insert(conn, table, columns, totals, conflict=(columns[0], "dims_key"), add=SUMS)
        if self.on_rolled_up is not None:
            self.on_rolled_up(conn, hourly, [rows[eid] for eid in inserted], now_ms)
        return inserted
