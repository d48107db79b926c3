"""Outcome triggers: outcomes counted by attribute set, so a plan can bill only the qualified ones.

A meter on an outcome can carry a trigger, ``"when": {"qualified": true}``: only outcome events whose
attributes (their ``metadata`` but ``value`` and ``reverses``) hold every one of those values count.
The metering rollups have no attributes, so each flush also rolls outcome events up by hour,
customer, agent, type and **attribute set** (``billing_outcomes``; each distinct set stored once in
``billing_outcome_attrs`` under a digest of its canonical JSON). A preview evaluates the trigger over
the few distinct sets, never over events. A reversal (a compensating event, ``quantity: -1``,
``metadata.reverses``) counts under its original outcome's attribute set, so it undoes exactly what
the original added to a trigger. Attributes are meant to be low-cardinality facts (``qualified``,
``tier``); an identifier in them makes one row per outcome (still correct, less compact).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, text

from authz.metering import bulk
from authz.metering.sink import EVENT_COLUMNS
from authz.storage.models.billing import BillingOutcome, BillingOutcomeAttrs, BillingUsageOutcome

HOURLY = cast(Table, BillingOutcome.__table__)
ATTRS = cast(Table, BillingOutcomeAttrs.__table__)
PER_PERIOD = cast(Table, BillingUsageOutcome.__table__)
HOURLY_COLUMNS = ("bucket", "customer", "agent", "type", "attrs_key", "count", "quantity")
PERIOD_COLUMNS = ("subscription_id", "period_start", "agent", "type", "attrs_key", "count", "quantity")
ID, TYPE, AT, AGENT, CUSTOMER, QUANTITY, METADATA = (
    EVENT_COLUMNS.index(n)
    for n in ("idempotency_id", "type", "occurred_at_ms", "agent", "customer", "quantity", "metadata")
)
NOT_ATTRIBUTES = ("value", "reverses")
ORIGINALS = "SELECT idempotency_id, metadata FROM metering_events WHERE idempotency_id IN ({})"
BUILD = text(
    "INSERT INTO billing_usage_outcomes (subscription_id, period_start, agent, type, attrs_key, count, quantity) "
    "SELECT :s, :p, agent, type, attrs_key, CAST(sum(count) AS BIGINT), CAST(sum(quantity) AS BIGINT) "
    "FROM billing_outcomes WHERE customer = :c AND bucket >= :lo AND bucket < :hi GROUP BY agent, type, attrs_key"
)
BUILT_ROWS = text(
    "SELECT o.agent, o.type, a.attributes, o.count, o.quantity FROM billing_usage_outcomes o "
    "JOIN billing_outcome_attrs a ON a.attrs_key = o.attrs_key WHERE o.subscription_id = :s AND o.period_start = :p"
)
HOURLY_ROWS = text(
    "SELECT o.agent, o.type, a.attributes, CAST(sum(o.count) AS BIGINT), CAST(sum(o.quantity) AS BIGINT) "
    "FROM billing_outcomes o JOIN billing_outcome_attrs a ON a.attrs_key = o.attrs_key "
    "WHERE o.customer = :c AND o.bucket >= :lo AND o.bucket < :hi GROUP BY o.agent, o.type, a.attributes"
)


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """Outcome counts of one (agent, type, attribute set) in a period."""

    agent: str
    type: str
    attributes: dict[str, Any]
    count: int
    quantity: int  # net: reversals subtract


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attributes(metadata: object) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if k not in NOT_ATTRIBUTES}


def attrs_key(attrs: str) -> str:
    return hashlib.blake2b(attrs.encode(), digest_size=16).hexdigest()


def triggered(attrs: dict[str, Any], when: Iterable[tuple[str, str]]) -> bool:
    """Whether every ``(name, canonical JSON value)`` of the trigger holds in ``attrs``."""
    return all(name in attrs and canonical(attrs[name]) == value for name, value in when)


def _metadata(raw: object) -> object:
    return json.loads(raw) if isinstance(raw, str) else raw


def roll(conn: Connection, events: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Add the flush's newly counted outcome events (``EVENT_COLUMNS`` rows) to ``billing_outcomes``;
    returns the hourly deltas written (``HOURLY_COLUMNS``)."""
    outs = [e for e in events if e[TYPE].startswith("outcome.") and e[CUSTOMER]]
    if not outs:
        return []
    metas = {e[ID]: _metadata(e[METADATA]) for e in outs}
    reverses = {
        str(m["reverses"]) for e in outs if e[QUANTITY] < 0 and isinstance(m := metas[e[ID]], dict) and "reverses" in m
    }
    originals: dict[str, object] = {}
    for at in range(0, len(reverses), 500):
        ids = sorted(reverses)[at : at + 500]
        query = text(ORIGINALS.format(", ".join(f":i{n}" for n in range(len(ids)))))  # values bound
        for eid, meta in conn.execute(query, {f"i{n}": v for n, v in enumerate(ids)}):
            originals[eid] = _metadata(meta)
    deltas: dict[tuple[Any, ...], list[int]] = {}
    sets: dict[str, str] = {}
    for e in outs:
        meta = metas[e[ID]]
        if e[QUANTITY] < 0 and isinstance(meta, dict) and str(meta.get("reverses")) in originals:
            meta = originals[str(meta["reverses"])]
        attrs = canonical(attributes(meta))
        key = attrs_key(attrs)
        sets[key] = attrs
        k = (e[AT] // 3_600_000 * 3600, e[CUSTOMER], e[AGENT], e[TYPE], key)
        acc = deltas.setdefault(k, [0, 0])
        acc[0] += 1
        acc[1] += e[QUANTITY]
    bulk.insert(conn, ATTRS, ("attrs_key", "attributes"), sorted(sets.items()), conflict=("attrs_key",))
    rows = [(*k, *v) for k, v in sorted(deltas.items())]
    bulk.insert(conn, HOURLY, HOURLY_COLUMNS, rows, conflict=HOURLY_COLUMNS[:5], add=("count", "quantity"))
    return rows


def build(conn: Connection, subscription_id: str, customer: str, period_start: int, lo: int, hi: int) -> None:
    """A built period's outcome counts, summed from the hourly outcome rollups of its hours."""
    conn.execute(BUILD, {"s": subscription_id, "p": period_start, "c": customer, "lo": lo, "hi": hi})


def keep(conn: Connection, rows: Iterable[tuple[tuple[str, int], Sequence[Any]]]) -> None:
    """Add hourly deltas to built periods: ``((subscription, period start), hourly row)`` pairs."""
    acc: dict[tuple[Any, ...], list[int]] = {}
    for (sub_id, start), r in rows:
        k = (sub_id, start, r[2], r[3], r[4])
        have = acc.setdefault(k, [0, 0])
        have[0] += r[5]
        have[1] += r[6]
    out = [(*k, *v) for k, v in sorted(acc.items())]
    bulk.insert(conn, PER_PERIOD, PERIOD_COLUMNS, out, conflict=PERIOD_COLUMNS[:5], add=("count", "quantity"))


def read(
    conn: Connection, customer: str, subscription_id: str, period_start: int, lo: int, hi: int, built: bool
) -> tuple[OutcomeRow, ...]:
    """A period's outcome counts by (agent, type, attribute set): from the built period, else hourly."""
    if built:
        result = conn.execute(BUILT_ROWS, {"s": subscription_id, "p": period_start})
    else:
        result = conn.execute(HOURLY_ROWS, {"c": customer, "lo": lo, "hi": hi})
    rows = [OutcomeRow(a, t, json.loads(attrs), int(c), int(q)) for a, t, attrs, c, q in result]
    return tuple(sorted(rows, key=lambda r: (r.agent, r.type, canonical(r.attributes))))
