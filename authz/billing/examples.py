"""The four pricing shapes as plan specs (data, not code): docs, tests, demo and bench use them.

For 3 agents using 3M, 8M and 12M tokens and 40 ``outcome.meeting_booked`` in one month:
A 147.00, B 152.00 (allowance per agent) or 151.00 (pooled), C 48.00, D 231.80 (USD).
"""

from __future__ import annotations

from typing import Any

TOKENS = {"source": "meter", "event_type": "tokens.consumed", "field": "tokens"}
MEETINGS = {"source": "meter", "event_type": "outcome.meeting_booked", "field": "quantity"}
SEATS = {"source": "seats", "policy": "max_active"}


def _spec(*components: dict[str, Any]) -> dict[str, Any]:
    return {
        "currency": "USD",
        "interval": "month",
        "anchor": "calendar",
        "grace_hours": 12,
        "components": list(components),
    }


SEAT_FEE = {"id": "seats", "label": "Agents", "kind": "flat", "amount": "49.00", "quantity": SEATS}


def overage(scope: str, free_m: str, per_m: str) -> dict[str, Any]:
    return {
        "id": "tokens",
        "label": f"Tokens above {free_m}M per agent",
        "kind": "graduated",
        "quantity": TOKENS,
        "group_by": "agent",
        "allowance_scope": scope,
        "unit_scale": "1000000",
        "rounding": "exact",
        "tiers": [{"up_to": free_m, "unit_amount": "0"}, {"up_to": None, "unit_amount": per_m}],
    }


SHAPES: dict[str, dict[str, Any]] = {
    "subscription": _spec(SEAT_FEE),
    "overage": _spec(SEAT_FEE, overage("per_group", "5", "0.50")),
    "overage-pooled": _spec(SEAT_FEE, overage("pooled", "5", "0.50")),
    "outcome": _spec(
        {
            "id": "meetings",
            "label": "Qualified meetings booked",
            "kind": "unit",
            "unit_amount": "1.20",
            "quantity": MEETINGS,
        }
    ),
    "hybrid": _spec(
        {"id": "base", "label": "Platform", "kind": "flat", "amount": "199.00"},
        {"id": "meetings", "label": "Meetings booked", "kind": "unit", "unit_amount": "0.80", "quantity": MEETINGS},
        overage("per_group", "10", "0.40"),
    ),
}
TOTALS = {
    "subscription": "147.00",
    "overage": "152.00",
    "overage-pooled": "151.00",
    "outcome": "48.00",
    "hybrid": "231.80",
}
