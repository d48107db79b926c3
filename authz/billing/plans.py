"""A plan version's pricing spec: currency, interval, anchor, grace, components; parsed and canonical.

Wire shape (every amount a decimal string or number; canonical form stores decimal strings)::

    {"currency": "USD", "interval": "month", "anchor": "calendar", "grace_hours": 12,
     "components": [{"id": "base", "kind": "flat", "amount": "199.00"}, ...]}

A spec is validated completely before anything is stored: the first error names its field
(``components.2.tiers.1.up_to``) and nothing changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from authz.billing.components import Component, SpecError, component_json, parse_component
from authz.billing.money import MoneyError, check_currency
from authz.billing.periods import ANCHORS, INTERVALS

MAX_COMPONENTS = 50
MAX_GRACE_HOURS = 24 * 31
SPEC_FIELDS = {"currency", "interval", "anchor", "grace_hours", "components"}


@dataclass(frozen=True, slots=True)
class PlanSpec:
    currency: str
    interval: str
    anchor: str
    grace_hours: int
    components: tuple[Component, ...]

    def json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "interval": self.interval,
            "anchor": self.anchor,
            "grace_hours": self.grace_hours,
            "components": [component_json(c) for c in self.components],
        }

    def sha256(self) -> str:
        return _sha256(self)


@lru_cache(maxsize=256)
def _sha256(spec: PlanSpec) -> str:  # a spec is immutable: its digest is computed once
    return hashlib.sha256(canonical(spec.json()).encode()).hexdigest()


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_spec(raw: object) -> PlanSpec:
    if not isinstance(raw, dict):
        raise SpecError("", "a plan version is a JSON object")
    extra = sorted(set(raw) - SPEC_FIELDS)
    if extra:
        raise SpecError(extra[0], "unknown field")
    try:
        currency = check_currency(raw.get("currency"))
    except MoneyError as exc:
        raise SpecError(exc.field, exc.message) from None
    interval = raw.get("interval", "month")
    if interval not in INTERVALS:
        raise SpecError("interval", f"must be one of {', '.join(INTERVALS)}")
    anchor = raw.get("anchor", "calendar")
    if anchor not in ANCHORS:
        raise SpecError("anchor", f"must be one of {', '.join(ANCHORS)}")
    grace = raw.get("grace_hours", 12)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_HOURS:
        raise SpecError("grace_hours", f"must be an integer from 0 to {MAX_GRACE_HOURS}")
    items = raw.get("components")
    if not isinstance(items, list) or not items:
        raise SpecError("components", "must be a non-empty list")
    if len(items) > MAX_COMPONENTS:
        raise SpecError("components", f"at most {MAX_COMPONENTS} components")
    components = tuple(parse_component(item, f"components.{i}") for i, item in enumerate(items))
    seen: set[str] = set()
    for i, c in enumerate(components):
        if c.id in seen:
            raise SpecError(f"components.{i}.id", f"duplicate component id {c.id!r}")
        seen.add(c.id)
    return PlanSpec(currency, str(interval), str(anchor), grace, components)
