"""The metering surface of the SDK: record events (ids generated client-side) and read usage.

Every event without an ``id`` gets a UUID here, before the first attempt, and the request carries an
``Idempotency-Key``: a retried request (:mod:`agent_client.sdk.retry`) repeats the same ids, which the
server stores once ("Ids already stored before ... not counted again"), so a retry never double-counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Surface, compact, operation


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(event)
    out.setdefault("id", str(uuid.uuid4()))
    out.setdefault("timestamp", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    return out


class Metering(Surface[R]):
    """``/metering``: record one event or a batch (ids generated client-side), and read usage."""

    @operation("POST /metering/events")
    def record(
        self,
        type: str,
        *,
        agent: str,
        id: str | None = None,
        timestamp: str | None = None,
        **fields: Any,
    ) -> R:
        """One event (``tokens.consumed``, ``call.completed`` or ``outcome.<name>``); its id is the Idempotency-Key."""
        event = _event(compact(type=type, agent=agent, id=id, timestamp=timestamp, **fields))
        return self._request("POST", "/metering/events", json=event, headers={"Idempotency-Key": event["id"]})

    @operation("POST /metering/events")
    def record_batch(self, events: Sequence[Mapping[str, Any]]) -> R:
        """Up to 1,000 events; each without an ``id`` gets one now, so a retry of this call is deduplicated.

        To retry after an error yourself, send the same events again with the ids they were given
        (:func:`prepare_events` assigns them up front).
        """
        prepared = prepare_events(events)
        return self._request(
            "POST", "/metering/events", json={"events": prepared}, headers={"Idempotency-Key": str(uuid.uuid4())}
        )

    @operation("GET /metering/usage")
    def usage(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        granularity: Literal["hour", "day", "month"] | None = None,
        group_by: str | Sequence[str] | None = None,
        filters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> R:
        """Usage per period; ``filters={"agent": "agt_1"}`` (several values of one dimension are ORed)."""
        group = group_by if group_by is None or isinstance(group_by, str) else ",".join(group_by)
        flt = [
            f"{dim}={v}" for dim, values in (filters or {}).items()
            for v in ([values] if isinstance(values, str) else values)
        ]  # fmt: skip
        params = {"from": from_, "to": to, "granularity": granularity, "group_by": group, "filter": flt}
        return self._request("GET", "/metering/usage", params=params)


class Outcomes(Surface[R]):
    """Outcomes an agent delivered (``outcome.<name>`` metering events, priced by outcome plans)."""

    @operation("POST /metering/events")
    def record(
        self,
        name: str,
        *,
        agent: str,
        quantity: float | None = None,
        id: str | None = None,
        timestamp: str | None = None,
        **fields: Any,
    ) -> R:
        """One ``outcome.<name>`` event (``ticket_resolved``...); its id (made if absent) is the Idempotency-Key."""
        event = _event(compact(type=f"outcome.{name}", agent=agent, quantity=quantity, id=id, timestamp=timestamp,
                               **fields))  # fmt: skip
        return self._request("POST", "/metering/events", json=event, headers={"Idempotency-Key": event["id"]})


def prepare_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``events`` with an ``id`` and a ``timestamp`` each (kept when present)."""
    return [_event(e) for e in events]
