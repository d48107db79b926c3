"""Validation precision, genai-prices agreement (incl. a price change), usage vs brute force, the CLI."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from authz.metering import MeteringConfig, MeteringService
from authz.metering.cli import format_rows
from authz.metering.pricing import PICO, price_components
from authz.storage.db import make_engine
from tests.authz.metering.conftest import event, tokens


@pytest.fixture
def svc(sqlite_url: str) -> Iterator[MeteringService]:
    engine = make_engine(sqlite_url)
    try:
        yield MeteringService(engine)
    finally:
        engine.dispose()


def now_ms() -> int:
    return int(time.time() * 1000)


def test_validation_errors_are_precise_and_valid_events_still_land(svc: MeteringService) -> None:
    t = now_ms()
    batch: list[Any] = [
        event("ok1", t),
        event("bad-type", t, type="tokens.spent"),
        tokens("bad-usage", t, input_tokens=-1),
        event("old", t - 25 * 3600 * 1000),
        event("future", t + 3600 * 1000),
        "not an object",
        event("bad-meta", t, metadata={"x": "y" * 5000}),
        event("typo", t, tool_name="x"),
        tokens("cache", t, input_tokens=10, cache_read_tokens=20),
        event("ok2", t, type="outcome.ticket_resolved", unit="tickets", quantity=3),
        {"id": "no-agent", "type": "call.completed", "timestamp": "2026-12-01T10:00:00"},
        event("qty", t, quantity=True),
    ]
    res = svc.ingest(batch)
    assert res.accepted == 2
    got = [(e.index, e.field) for e in res.rejected]
    assert got == [
        (1, "type"),
        (2, "usage.input_tokens"),
        (3, "timestamp"),
        (4, "timestamp"),
        (5, ""),
        (6, "metadata"),
        (7, "tool_name"),
        (8, "usage.input_tokens"),
        (10, "timestamp"),
        (11, "quantity"),
    ]
    assert res.rejected[2].message.startswith("is older than the late-event window")
    assert res.rejected[0].id == "bad-type"
    svc.flush()
    rows = svc.usage(0, 2**40, group_by=["type"])
    assert {r["type"]: r["quantity"] for r in rows} == {"call.completed": 1, "outcome.ticket_resolved": 3}


@pytest.mark.parametrize(
    ("provider", "model", "usage"),
    [
        ("openai", "gpt-4o", {"input_tokens": 12_345, "output_tokens": 678, "cache_read_tokens": 2_000}),
        (
            "anthropic",
            "claude-sonnet-4-5",
            {"input_tokens": 1_000_000, "output_tokens": 100_000, "cache_read_tokens": 200_000},
        ),
        (
            "anthropic",
            "claude-3-5-haiku-latest",
            {"input_tokens": 5_000, "output_tokens": 50, "cache_write_tokens": 1_000},
        ),
        ("google", "gemini-2.5-pro", {"input_tokens": 300_000, "output_tokens": 2_000}),
        ("", "gpt-4o-mini", {"input_tokens": 777, "output_tokens": 3}),
    ],
)
def test_prices_match_genai_prices(svc: MeteringService, provider: str, model: str, usage: dict[str, int]) -> None:
    t = now_ms()
    svc.ingest([tokens("p1", t, model=model, provider=provider, **usage)])
    svc.flush()
    expected = genai_prices.calc_price(
        genai_prices.Usage(**usage),
        model,
        provider_id=provider or None,
        genai_request_timestamp=datetime.fromtimestamp(t / 1000, tz=UTC),
    )
    with svc.engine.connect() as conn:
        cost_usd, cost_pusd, record = conn.execute(
            text(
                "SELECT e.cost_usd, e.cost_pusd, p.record FROM metering_events e"
                " JOIN metering_prices p ON p.price_id = e.price_id WHERE e.idempotency_id = 'p1'"
            )
        ).one()
    assert Decimal(cost_usd) == expected.total_price
    assert cost_pusd == int(expected.total_price * PICO)
    record = json.loads(record) if isinstance(record, str) else record
    assert (record["model_id"], record["provider_id"]) == (expected.model.id, expected.provider.id)
    assert record["rates_per_mtok"] == price_components(expected.model_price)
    assert svc.usage(0, 2**40)[0]["cost_pusd"] == cost_pusd


@pytest.mark.parametrize(
    ("model", "provider", "change", "usage"),
    [  # claude-sonnet-4-6 dropped its >200k-token tier on 2026-03-13; gemini-3.6-flash doubles on 2027-01-01
        (
            "claude-sonnet-4-6",
            "anthropic",
            datetime(2026, 3, 13, tzinfo=UTC),
            {"input_tokens": 400_000, "output_tokens": 10},
        ),
        ("gemini-3.6-flash", "google", datetime(2027, 1, 1, tzinfo=UTC), {"input_tokens": 1_000, "output_tokens": 10}),
    ],
)
def test_the_price_in_force_at_the_event_time_is_used(
    sqlite_url: str, model: str, provider: str, change: datetime, usage: dict[str, int]
) -> None:
    boundary = int(change.timestamp() * 1000)
    engine = make_engine(sqlite_url)
    try:
        svc = MeteringService(engine, clock=lambda: boundary / 1000 + 600)
        before, after = boundary - 600_000, boundary + 300_000
        res = svc.ingest(
            [tokens("before", before, model, provider, **usage), tokens("after", after, model, provider, **usage)]
        )
        assert res.accepted == 2, res.rejected
        svc.flush()
        with engine.connect() as conn:
            costs: dict[Any, Any] = dict(
                conn.execute(text("SELECT idempotency_id, cost_usd FROM metering_events")).all()
            )
    finally:
        engine.dispose()
    for eid, ts in (("before", before), ("after", after)):
        expected = genai_prices.calc_price(
            genai_prices.Usage(**{"output_tokens": 100, **usage}),
            model,
            provider_id=provider,
            genai_request_timestamp=datetime.fromtimestamp(ts / 1000, tz=UTC),
        )
        assert Decimal(costs[eid]) == expected.total_price
    assert costs["before"] != costs["after"]


def test_unknown_model_has_null_cost_with_a_reason(svc: MeteringService) -> None:
    svc.ingest([tokens("u1", now_ms(), model="no-such-model-xyz", provider="openai")])
    svc.flush()
    with svc.engine.connect() as conn:
        cost, reason = conn.execute(text("SELECT cost_pusd, cost_reason FROM metering_events")).one()
    assert cost is None and "no-such-model-xyz" in reason
    row = svc.usage(0, 2**40)[0]
    assert row["unpriced"] == 1 and row["cost_usd"] is None


DIMS = ("agent", "team", "model", "tool", "type")
GRAN = {"hour": 3600, "day": 86400}


def _period(ms: int, granularity: str) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if granularity == "month":
        dt = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        s = ms // 1000 // GRAN[granularity] * GRAN[granularity]
        dt = datetime.fromtimestamp(s, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


random_event = st.fixed_dictionaries(
    {
        "offset_ms": st.integers(0, 23 * 3600 * 1000),
        "agent": st.sampled_from(["a1", "a2", "a3"]),
        "team": st.sampled_from(["", "t1", "t2"]),
        "model": st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "mystery-model"]),
        "tool": st.sampled_from(["", "search", "fetch"]),
        "kind": st.sampled_from(["tokens", "call", "outcome"]),
        "n": st.integers(0, 50_000),
        "m": st.integers(0, 5_000),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(random_event, min_size=1, max_size=40),
    granularity=st.sampled_from(["hour", "day", "month"]),
    group_by=st.lists(st.sampled_from(DIMS), unique=True, max_size=3),
    dup=st.integers(0, 5),
)
def test_usage_equals_brute_force(
    svc: MeteringService, events: list[dict[str, Any]], granularity: str, group_by: list[str], dup: int
) -> None:
    with svc.engine.begin() as conn:
        for table in (
            "metering_inbox",
            "metering_events",
            "metering_rollups",
            "metering_rollups_daily",
            "metering_rollups_monthly",
        ):
            conn.execute(text(f"DELETE FROM {table}"))
    base = now_ms() - 23 * 3600 * 1000
    raw = []
    for i, e in enumerate(events):
        ts = base + e["offset_ms"]
        common = {"agent": e["agent"], "team": e["team"] or None, "tool": e["tool"] or None}
        if e["kind"] == "tokens":
            ev = tokens(f"h{i}", ts, model=e["model"], provider="", input_tokens=e["n"], output_tokens=e["m"])
        elif e["kind"] == "call":
            ev = event(f"h{i}", ts, model=e["model"], latency_ms=e["m"])
        else:
            ev = event(f"h{i}", ts, type="outcome.done", model=e["model"], quantity=e["n"])
        ev.update({k: v for k, v in common.items() if v is not None})
        raw.append((ts, ev))
    svc.ingest([ev for _, ev in raw] + [ev for _, ev in raw[:dup]])
    svc.flush()
    with svc.engine.connect() as conn:
        costs: dict[Any, Any] = dict(conn.execute(text("SELECT idempotency_id, cost_pusd FROM metering_events")).all())
    expected: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for ts, ev in raw:
        key = (_period(ts, granularity), *(ev.get(g, "") for g in group_by))
        acc = expected[key]
        acc[0] += 1
        acc[1] += ev["usage"]["input_tokens"] + ev["usage"]["output_tokens"] if "usage" in ev else ev.get("quantity", 1)
        acc[2] += ev.get("usage", {}).get("input_tokens", 0)
        acc[3] += costs[ev["id"]] or 0
    rows = svc.usage((base - 3600_000) // 1000, (base + 25 * 3600 * 1000) // 1000, granularity, group_by)
    got = {
        (r["period"], *(r[g] for g in group_by)): [r["count"], r["quantity"], r["input_tokens"], r["cost_pusd"]]
        for r in rows
    }
    assert got == dict(expected)


def test_usage_filters_and_cli_table(svc: MeteringService) -> None:
    t = now_ms()
    got = svc.ingest([tokens("f1", t, agent="a1"), tokens("f2", t), event("f3", t, agent="a2", tool="search")])
    assert got.accepted == 3 and not got.rejected
    svc.flush()
    rows = svc.usage(0, 2**40, "day", ["agent"], {"agent": ["a2"]})
    assert [(r["agent"], r["count"]) for r in rows] == [("a2", 1)]
    table = format_rows(svc.usage(0, 2**40, "month", ["agent", "type"]), ["agent", "type"], "table")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["period", "agent", "type"]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule aligned
    assert format_rows([], [], "csv").startswith("period,")


def test_config_from_env() -> None:
    cfg = MeteringConfig.from_env({"AUTHZ_METERING_FLUSH_INTERVAL_S": "0.5", "AUTHZ_METERING_SQLITE_FSYNC": "no"})
    assert cfg.flush_interval_s == 0.5 and cfg.sqlite_fsync is False and cfg.dedupe_s == 24 * 3600 + 300
