"""Budgets on an agent, a team or a workflow, and reserve/settle for resource servers (``budgets:use``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg

Period = Literal["day", "week", "month", "lifetime"]


def _owner(agent: str | None, team: str | None, workflow: str | None) -> str:
    given = [(kind, value) for kind, value in (("agents", agent), ("teams", team), ("workflows", workflow)) if value]
    if len(given) != 1:
        raise ValueError("name exactly one of agent=, team=, workflow=")
    kind, value = given[0]
    return f"/{kind}/{_seg(value)}/budgets"


class Budgets(Surface[R]):
    """Budgets on an agent, a team or a workflow: create, list, get, update, delete, status."""

    @operation("POST /agents/{}/budgets", "POST /teams/{}/budgets", "POST /workflows/{}/budgets")
    def create(
        self,
        *,
        agent: str | None = None,
        team: str | None = None,
        workflow: str | None = None,
        token_limit: int | None = None,
        call_limit: int | None = None,
        cost_limit_micros: int | None = None,
        currency: str | None = None,
        period: Period | None = None,
        timezone: str | None = None,
        hard_cap: bool | None = None,
        thresholds: Sequence[int] | None = None,
    ) -> R:
        """Exactly one owner and exactly one limit (``cost_limit_micros`` with ``currency``)."""
        body = compact(
            token_limit=token_limit, call_limit=call_limit, cost_limit_micros=cost_limit_micros, currency=currency,
            period=period, timezone=timezone, hard_cap=hard_cap,
            thresholds=None if thresholds is None else list(thresholds),
        )  # fmt: skip
        return self._request("POST", _owner(agent, team, workflow), json=body)

    @operation("GET /agents/{}/budgets", "GET /teams/{}/budgets", "GET /workflows/{}/budgets")
    def list(self, *, agent: str | None = None, team: str | None = None, workflow: str | None = None) -> R:
        return self._request("GET", _owner(agent, team, workflow))

    @operation("GET /budgets/{}")
    def get(self, budget_id: str) -> R:
        return self._request("GET", f"/budgets/{_seg(budget_id)}")

    @operation("PATCH /budgets/{}")
    def update(
        self,
        budget_id: str,
        *,
        limit: int | None = None,
        period: Period | None = None,
        timezone: str | None = None,
        hard_cap: bool | None = None,
        thresholds: Sequence[int] | None = None,
    ) -> R:
        """Changes only the fields given."""
        body = compact(
            limit=limit, period=period, timezone=timezone, hard_cap=hard_cap,
            thresholds=None if thresholds is None else list(thresholds),
        )  # fmt: skip
        return self._request("PATCH", f"/budgets/{_seg(budget_id)}", json=body)

    @operation("DELETE /budgets/{}")
    def delete(self, budget_id: str) -> R:
        return self._request("DELETE", f"/budgets/{_seg(budget_id)}")

    @operation("GET /budgets/{}/status")
    def status(self, budget_id: str) -> R:
        """Spent, reserved, remaining and the period end."""
        return self._request("GET", f"/budgets/{_seg(budget_id)}/status")

    @operation("POST /budgets/{}/webhooks")
    def add_webhook(self, budget_id: str, url: str, *, secret: str | None = None) -> R:
        """A threshold webhook endpoint on the budget (its ``secret`` is shown once)."""
        return self._request("POST", f"/budgets/{_seg(budget_id)}/webhooks", json=compact(url=url, secret=secret))

    @operation("POST /budgets/reserve")
    def reserve(
        self,
        *,
        agent: str | None = None,
        team: str | None = None,
        workflow: str | None = None,
        calls: int | None = None,
        tokens: int | None = None,
        cost: int | None = None,
        currency: str | None = None,
        units: int | None = None,
        ttl: float | None = None,
        request_id: str | None = None,
    ) -> R:
        """Hold an estimate (per unit) on every budget of the subject; 429 when a hard one is out.

        The 429's ``ApiError.retry_after`` says when the budget's period ends.

        ``request_id`` (generated when absent) makes the call idempotent: the server deduplicates by
        it (scoped to the calling client), so the call is declared idempotent and retried safely.
        """
        rid = request_id or f"rsv_{uuid.uuid4().hex}"
        estimate = compact(calls=calls, tokens=tokens, cost=cost, currency=currency) or None
        body = compact(agent=agent, team=team, workflow=workflow, request_id=rid, estimate=estimate, units=units,
                       ttl=ttl)  # fmt: skip
        return self._request("POST", "/budgets/reserve", json=body, idempotent=True)

    @operation("POST /budgets/settle")
    def settle(self, settlements: Sequence[Mapping[str, Any]]) -> R:
        """Settle (``actual``) or release (``release=True``) reservations by ``reservation_id``; idempotent
        (the server applies a settlement once), so it is retried."""
        body = {"settlements": [dict(s) for s in settlements]}
        return self._request("POST", "/budgets/settle", json=body, idempotent=True)
