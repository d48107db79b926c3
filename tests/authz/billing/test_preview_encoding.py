"""The preview's usage as query rows equals the same usage as objects, its JSON is encoded once, and
``plain()``'s shortcut writes every Decimal as normalizing it would."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.billing.examples import SHAPES
from authz.billing.money import plain
from authz.billing.periods import Period
from authz.billing.plans import parse_spec
from authz.billing.preview import SUMS, Table, Usage, UsageRow, document, etag, json_with_etag, preview

PERIOD = Period(1_798_761_600, 1_801_440_000)
DIMS = ("model", "workflow")


def _rows() -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for i, millions in enumerate((3, 8, 12)):
        sums = dict.fromkeys(SUMS, 0) | {"count": 2, "quantity": millions * 10**6, "cost_pusd": 10**12 + i}
        out.append((f"agt_{i}", "tokens.consumed", "m1", f"wf_{i % 2}", *sums.values()))
    outcome = dict.fromkeys(SUMS, 0) | {"count": 40, "quantity": 40}
    out.append(("agt_0", "outcome.meeting_booked", "", "", *outcome.values()))
    out.append(("agt_9", "call.completed", "", "", *dict.fromkeys(SUMS, 0).values()))  # not active: count 0
    return out


def _objects(rows: list[tuple[Any, ...]]) -> Usage:
    return Usage(
        tuple(
            UsageRow(
                str(r[0]),
                str(r[1]),
                dict(zip(DIMS, map(str, r[2:4]), strict=True)),
                dict(zip(SUMS, r[4:], strict=True)),
            )
            for r in rows
        )
    )


def _filtered(model: str, on: str = "model") -> dict[str, Any]:
    """The hybrid plan, its tokens metered only for ``model`` (a dimension the rows may lack)."""
    raw = json.loads(json.dumps(SHAPES["hybrid"]))
    for c in raw["components"]:
        if c["id"] == "tokens":
            c["quantity"]["filter"] = {on: [model]}
    return dict(raw)


def test_rows_as_a_table_price_like_row_objects() -> None:
    rows = _rows()
    raws = [SHAPES[shape] for shape in sorted(SHAPES)] + [_filtered("m1"), _filtered("m2"), _filtered("", "tool")]
    for raw in raws:
        spec = parse_spec(raw)
        docs = [
            preview(spec, PERIOD, usage, customer_id="c", plan_version_id="p@1", subscription_id="s")
            for usage in (Usage(table=Table(DIMS, SUMS, rows)), _objects(rows))
        ]
        assert docs[0] == docs[1], raw


def test_the_document_is_encoded_once_and_its_etag_is_its_digest() -> None:
    spec = parse_spec(SHAPES["hybrid"])
    usage = Usage(table=Table(DIMS, SUMS, _rows()))
    doc, body = document(spec, PERIOD, usage, customer_id="c", plan_version_id="p@1", subscription_id="s")
    assert doc["etag"] == etag(doc)
    assert json.loads(json_with_etag(body, doc["etag"])) == doc
    assert [a["agent"] for a in doc["cost"]["by_agent"]] == ["agt_0", "agt_1", "agt_2"]


@settings(deadline=None, max_examples=300)
@given(st.decimals(allow_nan=False, allow_infinity=False), st.sampled_from(["1", "3", "0.4", "1000000", "1e12"]))
def test_plain_is_the_normalized_text(d: Decimal, divisor: str) -> None:
    for value in (d, d / Decimal(divisor), d * Decimal(divisor)):
        assert plain(value) == ("0" if value == 0 else f"{value.normalize():f}")
