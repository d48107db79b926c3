"""Compatibility aliases of the event wire shape, accepted as written and mapped to the native one.

Integrators of usage-billing products write ``{"agent_id": ..., "event_type": ..., "quantity": ...,
"metadata": {...}}`` without an id: ``agent_id`` -> ``agent``, ``event_type`` -> ``type``, a missing
``timestamp`` is the receipt time, a missing ``id`` is the ``Idempotency-Key`` header (single
events) or a new one that the response returns. Outcome events may say ``outcome_id`` (their
idempotency key, -> ``id``), ``attributes`` (-> ``metadata``) and ``value`` (a decimal, ->
``metadata.value``). In the alias shape, dimensions written inside ``metadata`` (``model``,
``provider``, ``workflow``, ``team``, ``tool``, ``customer``, ``mcp_server``) are lifted to the
event when it lacks them. Anything else is left for the native validation to judge.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

RENAMES = (("agent_id", "agent"), ("event_type", "type"), ("outcome_id", "id"))
LIFTED = ("model", "provider", "workflow", "team", "tool", "customer", "mcp_server")
ALIASES = ("agent_id", "event_type", "outcome_id", "attributes", "value")


def native(raw: Any, now_ms: int, idempotency_key: str | None = None) -> tuple[Any, str | None]:
    """The native event for ``raw`` and the id assigned to it (None when the caller gave one)."""
    if not isinstance(raw, Mapping):
        return raw, None
    if "id" in raw and "timestamp" in raw and raw.keys().isdisjoint(ALIASES):
        return raw, None  # the native shape: nothing to map
    event = dict(raw)
    aliased = "agent_id" in event or "event_type" in event
    for alias, name in RENAMES:
        if alias in event:
            value = event.pop(alias)
            if name in event and event[name] != value:
                return raw, None  # both given and different: let validation name the native field
            event[name] = value
    if "attributes" in event:
        attributes = event.pop("attributes")
        if "metadata" not in event:
            event["metadata"] = attributes
    if "value" in event:
        value = event.pop("value")
        meta = event.get("metadata")
        event["metadata"] = {**(meta if isinstance(meta, Mapping) else {}), "value": str(value)}
    meta = event.get("metadata")
    if aliased and isinstance(meta, Mapping):  # {"metadata": {"model": ..., "workflow": ...}}: lift dimensions
        for name in LIFTED:
            if name not in event and isinstance(meta.get(name), str):
                event[name] = meta[name]
    if "timestamp" not in event:
        event["timestamp"] = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")
    assigned = None
    if "id" not in event:
        assigned = idempotency_key or "evt_" + secrets.token_hex(12)
        event["id"] = assigned
    return event, assigned
