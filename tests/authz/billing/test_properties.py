"""Property tests (hypothesis): rounded lines sum to the total; graduated == the sum of its tiers;
a preview never changes its inputs; exact vs floor/ceil scaling bounds."""

from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.billing.components import Tier, graduated, scale, volume
from authz.billing.money import EXPONENTS, round_money
from authz.billing.periods import Period
from authz.billing.plans import parse_spec
from authz.billing.preview import CreditBalance, Usage, UsageRow, preview

PERIOD = Period(1_798_761_600, 1_801_440_000)
amounts = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(set(draw(st.lists(st.decimals(min_value="0.001", max_value=10**6, places=3), max_size=5))))
    tiers = [Tier(b, draw(amounts), draw(amounts)) for b in bounds]
    return (*tiers, Tier(None, draw(amounts), draw(amounts)))


@settings(deadline=None, max_examples=150)
@given(tier_lists(), quantities)
def test_graduated_is_the_sum_of_its_tiers(tiers: tuple[Tier, ...], q: Decimal) -> None:
    uses = graduated(q, tiers)
    assert sum((u.units for u in uses), Decimal(0)) == q
    assert sum((u.amount for u in uses), Decimal(0)) == sum(
        (u.units * u.unit_amount + u.flat_amount for u in uses), Decimal(0)
    )
    for u in uses:  # each tier holds only units inside its half-open (lo, up_to]
        assert u.units >= 0 and (u.up_to is None or u.units <= u.up_to - u.lo)


@settings(deadline=None, max_examples=150)
@given(tier_lists(), quantities)
def test_volume_prices_the_whole_quantity_in_one_tier(tiers: tuple[Tier, ...], q: Decimal) -> None:
    use = volume(q, tiers)
    assert use.units == q and (use.up_to is None or q <= use.up_to) and q >= use.lo


@settings(deadline=None, max_examples=150)
@given(st.decimals(min_value=0, max_value=10**12, places=0), st.sampled_from(["1", "1000", "1000000"]))
def test_scaling_bounds(q: Decimal, unit: str) -> None:
    exact = scale(q, Decimal(unit), "exact")
    assert scale(q, Decimal(unit), "floor") <= exact <= scale(q, Decimal(unit), "ceil")


def _spec(currency: str, prices: list[Decimal]) -> dict[str, object]:
    components = [
        {
            "id": f"c{i}",
            "kind": "graduated",
            "group_by": "agent",
            "unit_scale": "1000",
            "quantity": {"source": "meter", "event_type": "tokens.consumed", "field": "tokens"},
            "tiers": [{"up_to": "1", "unit_amount": "0"}, {"up_to": None, "unit_amount": str(p)}],
        }
        for i, p in enumerate(prices)
    ]
    return {"currency": currency, "components": components}


rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(min_value=0, max_value=10**9)), max_size=8)


@settings(deadline=None, max_examples=150)
@given(
    st.sampled_from(sorted(EXPONENTS)),
    st.lists(amounts, min_size=1, max_size=4),
    rows,
    st.lists(st.integers(min_value=0, max_value=10**7), max_size=3),
)
def test_rounded_lines_sum_to_the_total_and_inputs_stay(
    currency: str, prices: list[Decimal], usage_rows: list[tuple[str, int]], credit_minor: list[int]
) -> None:
    spec = parse_spec(_spec(currency, prices))
    base = dict.fromkeys(
        (
            "count",
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
    usage = Usage(
        tuple(
            UsageRow(a, "tokens.consumed", {"workflow": ""}, base | {"quantity": q, "count": 1}) for a, q in usage_rows
        )
    )
    credits = [CreditBalance(f"cr{i}", "prepaid", 50, None, i, m) for i, m in enumerate(credit_minor)]
    before = copy.deepcopy((usage, credits))
    doc = preview(spec, PERIOD, usage, credits, customer_id="c", plan_version_id="p@1", subscription_id="s")
    assert (usage, credits) == before  # pure: the inputs are untouched
    lines = [Decimal(line["amount"]) for line in doc["lines"]]
    assert all(amount == round_money(amount, currency) for amount in lines)  # each line rounded once
    assert Decimal(doc["subtotal"]) == sum(lines, Decimal(0))
    applied = sum(c["amount_minor"] for c in doc["credits_applied"])
    assert doc["total_minor"] == doc["subtotal_minor"] - applied >= 0
    assert applied <= sum(credit_minor)
    again = preview(spec, PERIOD, usage, credits, customer_id="c", plan_version_id="p@1", subscription_id="s")
    assert again == doc  # deterministic: same inputs, same document and ETag
