"""Pure pricing: the four shapes' exact totals from usage rows, tiers, rounding and validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from authz.billing.components import SpecError, Tier, graduated, volume
from authz.billing.examples import SHAPES, TOTALS
from authz.billing.money import round_money
from authz.billing.periods import Period, period_at
from authz.billing.plans import parse_spec
from authz.billing.preview import CreditBalance, Usage, UsageRow, preview

DIMS = {"workflow": ""}
PERIOD = Period(1_798_761_600, 1_801_440_000)  # 2027-01-01 .. 2027-02-01 UTC


def sums(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(
        (
            "count",
            "quantity",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_pusd",
            "priced",
            "unpriced",
        ),
        0,
    )
    return base | kw


def month_usage() -> Usage:
    rows = [
        UsageRow(f"agt_{i}", "tokens.consumed", DIMS, sums(count=1, quantity=m * 10**6, input_tokens=m * 10**6))
        for i, m in enumerate((3, 8, 12))
    ]
    rows.append(UsageRow("agt_0", "outcome.meeting_booked", DIMS, sums(count=40, quantity=40)))
    return Usage(tuple(rows))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_four_shapes_exact_totals(shape: str) -> None:
    doc = preview(
        parse_spec(SHAPES[shape]), PERIOD, month_usage(), customer_id="c", plan_version_id="p@1", subscription_id="s"
    )
    assert doc["total"] == TOTALS[shape]
    assert doc["subtotal_minor"] == sum(line["amount_minor"] for line in doc["lines"])


def test_exact_versus_ceil_packages() -> None:
    spec = parse_spec(SHAPES["overage-pooled"])
    rows = (UsageRow("a", "tokens.consumed", DIMS, sums(count=1, quantity=8_200_000)),)
    exact = preview(spec, PERIOD, Usage(rows), customer_id="c", plan_version_id="p", subscription_id="s")
    assert exact["lines"][1]["amount"] == "1.60"  # 3.2M over at $0.50/1M
    raw = SHAPES["overage-pooled"] | {"components": [SHAPES["overage-pooled"]["components"][1] | {"rounding": "ceil"}]}
    ceil = preview(parse_spec(raw), PERIOD, Usage(rows), customer_id="c", plan_version_id="p", subscription_id="s")
    assert ceil["lines"][0]["amount"] == "2.00"  # ceil(8.2) = 9M -> 4M over
    assert ceil["lines"][0]["groups"][0]["quantity"] == "9"


def test_tiers_are_half_open_and_volume_prices_everything() -> None:
    tiers = (Tier(Decimal(5), Decimal(0)), Tier(Decimal(10), Decimal(1)), Tier(None, Decimal("0.5")))
    assert [u.units for u in graduated(Decimal(5), tiers)] == [5]
    assert [u.units for u in graduated(Decimal("12.5"), tiers)] == [5, 5, Decimal("2.5")]
    assert volume(Decimal(10), tiers).amount == 10
    assert volume(Decimal("10.01"), tiers).amount == Decimal("5.005")


def test_credits_burn_in_order() -> None:
    credits = [
        CreditBalance("late", "prepaid", 10, None, 1, 10_000),
        CreditBalance("promo", "promotional", 10, 5, 2, 1000),
        CreditBalance("first", "prepaid", 1, None, 3, 500),
    ]
    doc = preview(
        parse_spec(SHAPES["subscription"]),
        PERIOD,
        month_usage(),
        credits,
        customer_id="c",
        plan_version_id="p",
        subscription_id="s",
    )
    assert [(c["credit_id"], c["amount_minor"]) for c in doc["credits_applied"]] == [
        ("first", 500),
        ("promo", 1000),
        ("late", 10_000),
    ]
    assert doc["total"] == "32.00" and doc["subtotal"] == "147.00"


def test_rounding_is_half_up_to_the_exponent() -> None:
    assert str(round_money(Decimal("0.125"), "USD")) == "0.13"
    assert str(round_money(Decimal("2.5"), "JPY")) == "3"
    assert str(round_money(Decimal("1.0005"), "KWD")) == "1.001"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        (
            {
                "components": [
                    {
                        "id": "t",
                        "kind": "graduated",
                        "tiers": [
                            {"up_to": "5", "unit_amount": "0"},
                            {"up_to": "3", "unit_amount": "1"},
                            {"up_to": None, "unit_amount": "1"},
                        ],
                    }
                ]
            },
            "components.0.tiers.1.up_to",
        ),
        (
            {
                "components": [
                    {
                        "id": "t",
                        "kind": "graduated",
                        "tiers": [{"up_to": None, "unit_amount": "0"}, {"up_to": "3", "unit_amount": "1"}],
                    }
                ]
            },
            "components.0.tiers.0.up_to",
        ),
        ({"components": [{"id": "f", "kind": "flat", "amount": "-1"}]}, "components.0.amount"),
        (
            {
                "components": [
                    {"id": "u", "kind": "unit", "unit_amount": "1", "quantity": {"source": "meter", "event_type": "x"}}
                ]
            },
            "components.0.quantity.event_type",
        ),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(SHAPES["hybrid"] | change)
    assert info.value.field == field


def test_anniversary_periods_clamp_to_month_end() -> None:
    jan31 = 1_801_353_600  # 2027-01-31T00:00:00Z
    feb = period_at(jan31 + 86_400 * 2, interval="month", anchor="anniversary", tz="UTC", subscription_start=jan31)
    assert (feb.start, feb.end - feb.start) == (jan31, 28 * 86_400)
    cal = period_at(jan31, interval="month", anchor="calendar", tz="UTC", subscription_start=jan31 - 86_400 * 10)
    assert cal == PERIOD
