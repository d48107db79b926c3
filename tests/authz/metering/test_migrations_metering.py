"""Metering migrations 0007-0009 keep data: price provenance moved, rollups summed, inbox rows kept."""

from __future__ import annotations

import importlib.util
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import migrations
from authz.metering.pricing import PriceBook
from authz.metering.sink import ROLLUPS, SUMS
from authz.metering.usage import DAY, HOUR
from authz.storage.db import make_engine

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _month(seconds: int) -> int:
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("kind", KINDS)
def test_migration_0007_moves_per_event_provenance(kind: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(f"empty_{kind}_url")
    migrations.upgrade(url, "0006")
    engine = make_engine(url)
    old_price = {
        "source": "genai-prices",
        "version": "0.2.3",
        "provider_id": "openai",
        "model_id": "gpt-4o",
        "model_ref": "gpt-4o",
        "rates_per_mtok": {"input_mtok": "2.5", "output_mtok": "10"},
        "input_usd": "0.0025",
        "output_usd": "0.001",
        "exact_in_pusd": True,
    }
    events = sa.table(
        "metering_events",
        *(sa.column(c) for c in ("idempotency_id", "type", "occurred_at_ms", "agent", "unit", "quantity")),
        *(sa.column(c) for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")),
        *(sa.column(c) for c in ("team", "workflow", "customer", "mcp_server", "tool", "provider", "model")),
        *(sa.column(c) for c in ("cost_usd", "cost_pusd", "received_at_ms", "flushed_at_ms")),
        sa.column("price", sa.JSON),
    )
    base: dict[str, Any] = {"type": "tokens.consumed", "occurred_at_ms": 1, "agent": "a", "unit": "tokens"}
    base |= {"quantity": 1100, "input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 0}
    base |= dict.fromkeys(("cache_write_tokens",), 0) | dict.fromkeys(("team", "workflow", "customer"), "")
    base |= {"mcp_server": "", "tool": "", "provider": "openai", "model": "gpt-4o", "cost_usd": "0.0035"}
    base |= {"cost_pusd": 3_500_000_000, "received_at_ms": 5, "flushed_at_ms": 6}
    try:
        with engine.begin() as conn:
            conn.execute(
                events.insert(),
                [
                    {**base, "idempotency_id": "e1", "price": old_price},
                    {**base, "idempotency_id": "e2", "price": {**old_price, "input_usd": "1"}, "received_at_ms": 2},
                    {**base, "idempotency_id": "e3", "price": None},
                ],
            )
        migrations.upgrade(url, "0007")
        with engine.connect() as conn:
            prices = conn.execute(sa.text("SELECT price_id, record, first_seen_ms FROM metering_prices")).all()
            ids: dict[Any, Any] = dict(
                conn.execute(sa.text("SELECT idempotency_id, price_id FROM metering_events")).all()
            )
        assert len(prices) == 1
        price_id, record, first_seen = prices[0]
        record = json.loads(record) if isinstance(record, str) else record
        assert record == {k: old_price[k] for k in ("source", "version", "provider_id", "model_id", "rates_per_mtok")}
        assert first_seen == 2
        assert ids == {"e1": price_id, "e2": price_id, "e3": None}
        migrations.downgrade(url, "0006")
        with engine.connect() as conn:
            back: dict[Any, Any] = dict(
                conn.execute(sa.text("SELECT idempotency_id, price FROM metering_events")).all()
            )
        restored = json.loads(back["e1"]) if isinstance(back["e1"], str) else back["e1"]
        assert restored == record and back["e3"] is None
    finally:
        engine.dispose()


def test_migration_0007_names_prices_like_the_price_book() -> None:
    path = Path(migrations.__file__).parent / "versions" / "0007_metering_prices.py"
    spec = importlib.util.spec_from_file_location("migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    priced = PriceBook().price("openai", "gpt-4o", int(time.time() * 1000), 1000, 10)
    assert priced.provenance is not None
    assert module._price_id(priced.provenance) == priced.price_id


@pytest.mark.parametrize("kind", KINDS)
def test_migration_0008_fills_days_and_months_from_hours(kind: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(f"empty_{kind}_url")
    migrations.upgrade(url, "0007")
    engine = make_engine(url)
    dims = {"type": "call.completed", "agent": "a", "team": "", "workflow": "", "customer": "", "mcp_server": ""}
    dims |= {"tool": "", "provider": "", "model": "", "unit": "calls"}
    oct31 = int(datetime(2026, 10, 31, tzinfo=UTC).timestamp())
    hours = [oct31 + 22 * HOUR, oct31 + 23 * HOUR, oct31 + DAY, oct31 + DAY + HOUR]  # Oct 31 x2, Nov 1 x2
    try:
        with engine.begin() as conn:
            conn.execute(
                ROLLUPS.insert(),
                [
                    {"bucket": b, "dims_key": "k", "day": b // DAY * DAY, "month": _month(b), **dims}
                    | dict.fromkeys(SUMS, n + 1)
                    for n, b in enumerate(hours)
                ],
            )
        migrations.upgrade(url, "0008")
        with engine.connect() as conn:
            days = conn.execute(sa.text("SELECT day, month, count, cost_pusd FROM metering_rollups_daily")).all()
            months = conn.execute(sa.text("SELECT month, count, agent FROM metering_rollups_monthly")).all()
    finally:
        engine.dispose()
    assert sorted(tuple(map(int, r)) for r in days) == [(oct31, _month(oct31), 3, 3), (oct31 + DAY, oct31 + DAY, 7, 7)]
    assert sorted((int(m), int(c), a) for m, c, a in months) == [(_month(oct31), 3, "a"), (oct31 + DAY, 7, "a")]


@pytest.mark.parametrize("kind", KINDS)
def test_migration_0009_keeps_inbox_rows_both_ways(kind: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(f"empty_{kind}_url")
    migrations.upgrade(url, "0008")
    engine = make_engine(url)
    inbox = sa.table(
        "metering_inbox", *(sa.column(c) for c in ("idempotency_id", "received_at_ms", "payload", "flushed_at_ms"))
    )
    rows = [
        {"idempotency_id": "flushed", "received_at_ms": 1, "payload": "[]", "flushed_at_ms": 2},
        {"idempotency_id": "pending-1", "received_at_ms": 3, "payload": "[1]", "flushed_at_ms": None},
        {"idempotency_id": "pending-2", "received_at_ms": 4, "payload": "[2]", "flushed_at_ms": None},
    ]
    query = sa.text("SELECT idempotency_id, received_at_ms, payload, flushed_at_ms FROM metering_inbox")
    try:
        with engine.begin() as conn:
            conn.execute(inbox.insert(), rows)
        migrations.upgrade(url, "0009")
        with engine.connect() as conn:
            assert sorted(conn.execute(query).all()) == sorted(tuple(r.values()) for r in rows)
        assert sa.inspect(engine).get_pk_constraint("metering_inbox")["constrained_columns"] == ["idempotency_id"]
        migrations.downgrade(url, "0008")
        with engine.connect() as conn:
            assert sorted(conn.execute(query).all()) == sorted(tuple(r.values()) for r in rows)
            seqs = [s for (s,) in conn.execute(sa.text("SELECT seq FROM metering_inbox"))]
        assert len(set(seqs)) == 3 and all(isinstance(s, int) for s in seqs)
        with engine.begin() as conn:  # the sequence goes on after the numbered rows
            conn.execute(inbox.insert(), [{**rows[0], "idempotency_id": "after"}])
            assert conn.execute(sa.text("SELECT seq FROM metering_inbox WHERE idempotency_id = 'after'")).scalar()
        migrations.upgrade(url, "0009")
    finally:
        engine.dispose()
