"""Outcomes reported from tool code: ``record_outcome`` and the ``outcome.<name>`` events it becomes.

An outcome may carry your stable ``outcome_id`` (the event's idempotency key: reported twice,
counted once), a ``value`` and ``attributes`` (the event's ``metadata``), which billing's triggers
and value receipts read. A reversal is a compensating outcome: ``quantity=-1`` and
``attributes={"reverses": outcome_id}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from resource_server.context import record_usage

OUTCOME_PREFIX = "outcome."
_SEP = "\x1f"  # separates the outcome name from its JSON details in a usage key (never in a real name)


def record_outcome(
    name: str,
    quantity: float = 1,
    *,
    outcome_id: str | None = None,
    value: str | float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Inside a tool: a business outcome happened (``outcome.<name>`` event, e.g. ``meeting_booked``).

    ``outcome_id`` is your stable id for the outcome: it becomes the event's idempotency key, so the
    AS counts it once however often it is reported (and a reversal, ``quantity=-1`` with
    ``attributes={"reverses": id}``, can name it). ``value`` (a decimal, in the customer's currency)
    and ``attributes`` (a small JSON object, e.g. ``{"qualified": True}``) travel in the event's
    ``metadata`` for billing triggers and value receipts."""
    if outcome_id is None and value is None and attributes is None:
        record_usage(**{OUTCOME_PREFIX + name: float(quantity)})
        return
    detail = {"outcome_id": outcome_id, "value": None if value is None else str(value), "attributes": attributes or {}}
    record_usage(**{OUTCOME_PREFIX + name + _SEP + json.dumps(detail, sort_keys=True): float(quantity)})


def outcome_event(base: dict[str, Any], key: str, amount: float, default_id: str) -> dict[str, Any]:
    """The ``outcome.<name>`` event of one usage key recorded by :func:`record_outcome`."""
    name, _, detail = key.partition(_SEP)
    event = {**base, "id": default_id, "type": name, "quantity": round(amount)}
    if detail:
        extra = json.loads(detail)
        if extra.get("outcome_id"):
            event["id"] = extra["outcome_id"]
        meta = dict(extra.get("attributes") or {})
        if extra.get("value") is not None:
            meta["value"] = extra["value"]
        if meta:
            event["metadata"] = meta
    return event
