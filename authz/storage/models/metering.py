"""Metering tables: the SQL staging inbox, the append-only event table and hourly rollups.

* ``metering_inbox`` is PostgreSQL's durable buffer *and* dedupe window: ingestion inserts one
  row per idempotency id (``ON CONFLICT DO NOTHING``); the flusher marks rows flushed; rows older
  than the dedupe window are pruned once flushed. SQLite counts at ingest (no inbox rows; the
  flusher still drains rows an earlier version left).
* ``metering_events`` holds every counted event exactly once (primary key = idempotency id), with
  its exact cost (a decimal string and integer pico-USD) and ``price_id``, the price it was priced
  with: ``metering_prices`` keeps that price's provenance once (not once per event: it was most of
  an event row's bytes and of the flusher's work). No foreign key: the flusher writes the price row
  in the same transaction as the events, and a key check per event row is a lookup per event.
* ``metering_rollups`` has one row per (hour, dimensions), updated in the same transaction as the
  event insert, so it never disagrees with the events. Day and month starts are stored per row, so
  coarser granularities are plain GROUP BYs. ``metering_rollups_daily`` and ``_monthly`` hold the
  same sums per (UTC day | calendar month, dimensions), updated in that same transaction: a daily
  or monthly query over months reads days or months, not every hour (24x / ~720x fewer rows).

Dimensions are never NULL (absent = ``""``) so they can take part in unique keys. Times are
integer milliseconds (events) or seconds (buckets), UTC. Money is never a float.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class MeteringInbox(Base):
    """The SQL staging buffer: acknowledged events waiting for the flusher (and the dedupe window).

    Keyed by the idempotency id itself, with no sequence column: each acknowledged event costs one
    heap row and three index entries (the key, ``received_at_ms`` for pruning, and the partial
    pending index the flusher reads oldest-first), which is what ingestion pays for durability.
    """

    __tablename__ = "metering_inbox"
    idempotency_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    payload: Mapped[str] = mapped_column(Text)  # the validated event, canonical JSON
    flushed_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index(
            "ix_metering_inbox_pending",
            "received_at_ms",
            sqlite_where=text("flushed_at_ms IS NULL"),
            postgresql_where=text("flushed_at_ms IS NULL"),
        ),
    )


class MeteringEvent(Base):
    """One counted usage event (append-only; corrections are new events)."""

    __tablename__ = "metering_events"
    idempotency_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    occurred_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    agent: Mapped[str] = mapped_column(String(255))
    team: Mapped[str] = mapped_column(String(255), default="")
    workflow: Mapped[str] = mapped_column(String(255), default="")
    customer: Mapped[str] = mapped_column(String(255), default="")
    mcp_server: Mapped[str] = mapped_column(String(2048), default="")
    tool: Mapped[str] = mapped_column(String(255), default="")
    provider: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(255), default="")
    unit: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cost_usd: Mapped[str | None] = mapped_column(String(64), nullable=True)  # exact Decimal as text
    cost_pusd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # 1e-12 USD, summed by rollups
    cost_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)  # why cost is NULL
    price_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # -> metering_prices
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    received_at_ms: Mapped[int] = mapped_column(BigInteger)
    flushed_at_ms: Mapped[int] = mapped_column(BigInteger)


class _Sums:
    """The summed columns every rollup table shares (``authz.metering.sink.SUMS``)."""

    count: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[int] = mapped_column(BigInteger)
    cost_pusd: Mapped[int] = mapped_column(BigInteger)  # sum over priced events
    priced: Mapped[int] = mapped_column(BigInteger)  # token events with a cost
    unpriced: Mapped[int] = mapped_column(BigInteger)  # token events whose cost is NULL


class _Dims:
    """The dimensions every rollup table shares (``authz.metering.sink.DIMS``), never NULL."""

    type: Mapped[str] = mapped_column(String(80))
    agent: Mapped[str] = mapped_column(String(255))
    team: Mapped[str] = mapped_column(String(255))
    workflow: Mapped[str] = mapped_column(String(255))
    customer: Mapped[str] = mapped_column(String(255))
    mcp_server: Mapped[str] = mapped_column(String(2048))
    tool: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(32))


class MeteringRollup(_Dims, _Sums, Base):
    """Hourly totals per dimension tuple; ``dims_key`` is a digest of the dimensions (bounded key size)."""

    __tablename__ = "metering_rollups"
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hour start, Unix seconds UTC
    dims_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger)  # UTC day start, Unix seconds
    month: Mapped[int] = mapped_column(BigInteger)  # UTC month start, Unix seconds
    # Invoice previews (authz.billing) read one customer's rows of a period.
    __table_args__ = (Index("ix_metering_rollups_customer", "customer", "bucket"),)


class MeteringRollupDaily(_Dims, _Sums, Base):
    """Daily totals per dimension tuple (the hourly rows of that UTC day, summed)."""

    __tablename__ = "metering_rollups_daily"
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # UTC day start, Unix seconds
    dims_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_metering_rollups_daily_customer", "customer", "day"),)


class MeteringRollupMonthly(_Dims, _Sums, Base):
    """Calendar-month totals per dimension tuple (UTC)."""

    __tablename__ = "metering_rollups_monthly"
    month: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # UTC month start, Unix seconds
    dims_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    __table_args__ = (Index("ix_metering_rollups_monthly_customer", "customer", "month"),)


class MeteringPrice(Base):
    """One distinct genai-prices price an event was priced with: its provenance, stored once."""

    __tablename__ = "metering_prices"
    price_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # blake2b-128 of the record's JSON
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # source, version, provider_id, model_id, rates_per_mtok
    first_seen_ms: Mapped[int] = mapped_column(BigInteger)  # when a flush first stored it
