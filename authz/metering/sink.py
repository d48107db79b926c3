"""The SQL sink: buffered events -> ``metering_events`` + ``metering_rollups`` in ONE transaction.

Exactly-once in effect: events are inserted ``ON CONFLICT (idempotency_id) DO NOTHING RETURNING``
and only the rows actually inserted are added to the rollups, in the same transaction. A flush
retried after a crash (the buffer still holds the batch) therefore inserts nothing twice and adds
nothing twice. One flusher at a time: the transaction starts by taking a PostgreSQL transaction
advisory lock, or SQLite's write lock (SQLite has one writer anyway).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from authz.metering.events import TOKENS, Event
from authz.metering.pricing import PriceBook
from authz.storage.models_metering import MeteringEvent, MeteringRollup

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
EVENTS = cast(Table, MeteringEvent.__table__)
ROLLUPS = cast(Table, MeteringRollup.__table__)


@dataclass(frozen=True, slots=True)
class Staged:
    """One acknowledged event as the buffer holds it."""

    id: str
    payload: str
    received_at_ms: int


def dims_key(dims: tuple[str, ...]) -> str:
    return hashlib.blake2b("\x1f".join(dims).encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=4096)
def calendar(bucket: int) -> tuple[int, int]:
    """(day start, month start) of an hour bucket, Unix seconds UTC."""
    dt = datetime.fromtimestamp(bucket, tz=UTC)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(day.timestamp()), int(day.replace(day=1).timestamp())


class Sink:
    def __init__(self, engine: Engine, pricebook: PriceBook | None = None) -> None:
        self.engine = engine
        self.pricebook = pricebook or PriceBook()
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.postgres else sqlite.insert

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction holding the flusher lock (blocks while another replica flushes)."""
        with self.engine.begin() as conn:
            if self.postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FLUSH_LOCK_KEY})
            else:  # a write that matches nothing still takes SQLite's RESERVED (write) lock now
                conn.execute(text("UPDATE metering_rollups SET count = count WHERE 1 = 0"))
            yield conn

    def row(self, event: Event, received_at_ms: int, now_ms: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "idempotency_id": event.id,
            "type": event.type,
            "occurred_at_ms": event.occurred_at_ms,
            "agent": event.agent,
            "team": event.team,
            "workflow": event.workflow,
            "customer": event.customer,
            "mcp_server": event.mcp_server,
            "tool": event.tool,
            "provider": event.provider,
            "model": event.model,
            "unit": event.unit,
            "quantity": event.quantity,
            "input_tokens": event.input_tokens,
            "output_tokens": event.output_tokens,
            "cache_read_tokens": event.cache_read_tokens,
            "cache_write_tokens": event.cache_write_tokens,
            "status": event.status,
            "latency_ms": event.latency_ms,
            "cost_usd": None,
            "cost_pusd": None,
            "cost_reason": None,
            "price": None,
            "metadata": event.metadata,
            "received_at_ms": received_at_ms,
            "flushed_at_ms": now_ms,
        }
        if event.type == TOKENS:
            priced = self.pricebook.price(
                event.provider,
                event.model,
                event.occurred_at_ms,
                event.input_tokens,
                event.output_tokens,
                event.cache_read_tokens,
                event.cache_write_tokens,
            )
            row["cost_usd"] = None if priced.cost_usd is None else str(priced.cost_usd)
            row["cost_pusd"] = priced.cost_pusd
            row["cost_reason"] = priced.reason
            row["price"] = priced.provenance
        return row

    def write(self, conn: Connection, staged: Sequence[Staged], now_ms: int) -> int:
        """Insert the events not yet counted and add exactly those to the rollups; returns how many."""
        rows: dict[str, dict[str, Any]] = {}
        for item in staged:
            if item.id not in rows:
                rows[item.id] = self.row(Event.from_json(item.payload), item.received_at_ms, now_ms)
        if not rows:
            return 0
        stmt = (
            self._insert(EVENTS)
            .on_conflict_do_nothing(index_elements=["idempotency_id"])
            .returning(EVENTS.c.idempotency_id)
        )
        inserted = conn.execute(stmt, list(rows.values())).scalars().all()
        if not inserted:
            return 0
        deltas: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for eid in inserted:
            r = rows[eid]
            bucket = r["occurred_at_ms"] // 1000 // 3600 * 3600
            key = (bucket, tuple(r[d] for d in DIMS))
            acc = deltas.get(key)
            if acc is None:
                acc = deltas[key] = [0] * len(SUMS)
            acc[0] += 1
            acc[1] += r["quantity"]
            acc[2] += r["input_tokens"]
            acc[3] += r["output_tokens"]
            acc[4] += r["cache_read_tokens"]
            acc[5] += r["cache_write_tokens"]
            acc[6] += r["latency_ms"] or 0
            if r["cost_pusd"] is not None:
                acc[7] += r["cost_pusd"]
                acc[8] += 1
            elif r["type"] == TOKENS:
                acc[9] += 1
        rollups = []
        for (bucket, dims), sums in sorted(deltas.items()):  # a fixed order: no deadlocks between writers
            day, month = calendar(bucket)
            rollups.append(
                {
                    "bucket": bucket,
                    "dims_key": dims_key(dims),
                    "day": day,
                    "month": month,
                    **dict(zip(DIMS, dims, strict=True)),
                    **dict(zip(SUMS, sums, strict=True)),
                }
            )
        ins = self._insert(ROLLUPS)
        upsert = ins.on_conflict_do_update(
            index_elements=["bucket", "dims_key"], set_={c: ROLLUPS.c[c] + ins.excluded[c] for c in SUMS}
        )
        conn.execute(upsert, rollups)
        return len(inserted)
