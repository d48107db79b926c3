"""The cached price book (lookups, exact affine rates) agrees with genai-prices, and provenance is stored once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from authz.metering import MeteringService
from authz.metering.pricing import PICO, PriceBook, format_usd, usd_text
from authz.storage.db import make_engine
from tests.authz.metering.conftest import event, tokens

DAY_MS = 86_400_000
# Plain, tiered (>200k input), several providers, and deepseek's time-of-day (off-peak) prices.
MODELS = [
    ("openai", "gpt-4o"),
    ("", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-6"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-3.6-flash"),
    ("deepseek", "deepseek-chat"),
    ("deepseek", "deepseek-v4-flash"),
]
BOOK = PriceBook()  # shared on purpose: later examples hit what earlier ones cached


def genai(provider: str, model: str, at_ms: int, counts: tuple[int, int, int, int]) -> Any:
    usage = genai_prices.Usage(
        input_tokens=counts[0], output_tokens=counts[1], cache_read_tokens=counts[2], cache_write_tokens=counts[3]
    )
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return genai_prices.calc_price(usage, model, provider_id=provider or None, genai_request_timestamp=at)


@st.composite
def usages(draw: st.DrawFn) -> tuple[int, int, int, int]:
    near_tiers = st.sampled_from([0, 1, 2, 3, 127_999, 128_000, 128_001, 200_000, 200_001, 1_000_000])
    total = draw(st.one_of(near_tiers, st.integers(0, 3_000_000), st.integers(0, 10**12)))
    cache_read = draw(st.one_of(st.just(0), st.integers(0, total)))
    cache_write = draw(st.one_of(st.just(0), st.integers(0, total - cache_read)))
    output = draw(st.one_of(st.just(0), st.integers(0, 200_000)))
    return (total, output, cache_read, cache_write)


@settings(max_examples=400, deadline=None)
@given(
    pair=st.sampled_from(MODELS),
    # 2025-06 .. 2027-06, with times of day near deepseek's price switches (00:30, 16:30, 01:00, 04:00 UTC)
    day=st.integers(20_250, 20_975),
    in_day=st.one_of(
        st.integers(0, DAY_MS - 1),
        st.sampled_from([1_800_000, 59_400_000, 3_600_000, 14_400_000]).flatmap(lambda t: st.integers(t - 2, t + 1)),
    ),
    counts=usages(),
)
def test_cached_price_equals_genai_prices(
    pair: tuple[str, str], day: int, in_day: int, counts: tuple[int, int, int, int]
) -> None:
    provider, model = pair
    at_ms = day * DAY_MS + in_day
    got = BOOK.price(provider, model, at_ms, *counts)
    try:
        expected = genai(provider, model, at_ms, counts)
    except Exception:
        assert got.cost_usd is None and got.reason
        return
    assert got.cost_usd == expected.total_price, (got, expected)
    assert got.cost_pusd == int((expected.total_price * PICO).to_integral_value())
    assert got.provenance is not None
    assert (got.provenance["provider_id"], got.provenance["model_id"]) == (expected.provider.id, expected.model.id)
    assert Decimal(usd_text(got.cost_usd)) == expected.total_price


def test_unknown_models_are_not_priced_and_not_retried() -> None:
    book = PriceBook()
    first = book.price("openai", "no-such-model-xyz", 0, 10, 10)
    assert first.cost_usd is None and first.reason is not None and "no-such-model-xyz" in first.reason
    assert book.price("openai", "no-such-model-xyz", DAY_MS * 9, 1, 1) == first
    assert book.price("openai", "", 0, 1, 1).reason == "no model given"


def test_format_usd_is_exact() -> None:
    assert [format_usd(v) for v in (None, 0, 5 * 10**11, 3 * 10**12, 3_500_000_000, -1)] == [
        None,
        "0.00",
        "0.50",
        "3.00",
        "0.0035",
        "-0.000000000001",
    ]
    assert format_usd(10**40 + 1) == "10000000000000000000000000000.000000000001"


def test_provenance_is_stored_once_per_distinct_price(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        svc = MeteringService(engine)
        t = int(time.time() * 1000)
        batch = [tokens(f"a{i}", t, input_tokens=1000 + i) for i in range(30)]
        batch += [tokens(f"b{i}", t, model="gpt-4o-mini", input_tokens=500 + i) for i in range(20)]
        batch += [event(f"c{i}", t) for i in range(5)]
        assert svc.ingest(batch).accepted == 55
        svc.flush()
        svc.ingest([tokens("later", t, input_tokens=7)])
        svc.flush()
        with engine.connect() as conn:
            prices: dict[Any, Any] = dict(conn.execute(sa.text("SELECT price_id, record FROM metering_prices")).all())
            used = conn.execute(
                sa.text("SELECT model, price_id, count(*) FROM metering_events GROUP BY model, price_id")
            ).all()
    finally:
        engine.dispose()
    assert len(prices) == 2
    assert {(m, n) for m, pid, n in used if pid in prices} == {("gpt-4o", 31), ("gpt-4o-mini", 20)}
    assert [(m, pid) for m, pid, _ in used if pid not in prices] == [("", None)]  # calls carry no price
    record = json.loads(next(iter(prices.values())))
    assert set(record) == {"source", "version", "provider_id", "model_id", "rates_per_mtok"}
