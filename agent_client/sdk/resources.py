"""The admin API surfaces of the SDK: thin typed methods, one per ``/api/v1`` operation.

Each class is generic in ``R``, what its requester returns: ``dict`` for :class:`Client`, a
coroutine of one for :class:`AsyncClient`. Arguments left ``None`` are not sent. Metering lives in
:mod:`agent_client.sdk.metering`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Params = Mapping[str, object]
Period = Literal["day", "week", "month", "lifetime"]


class Requester(Protocol[R_co]):
    def __call__(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> R_co: ...


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


def compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Surface(Generic[R]):
    def __init__(self, request: Requester[R]) -> None:
        self._request = request


class Credentials(Surface[R]):
    """``/agents/{id}/credentials``: issue, list, rotate, revoke."""

    def issue(
        self,
        agent_id: str,
        kind: Literal["secret", "public_key", "jwks_uri"] = "secret",
        *,
        jwk: Mapping[str, Any] | None = None,
        jwks_uri: str | None = None,
    ) -> R:
        """A new credential; for ``secret`` the answer carries ``secret`` (shown once)."""
        body = compact(kind=kind, jwk=dict(jwk) if jwk else None, jwks_uri=jwks_uri)
        return self._request("POST", f"/agents/{_seg(agent_id)}/credentials", json=body)

    def list(self, agent_id: str) -> R:
        return self._request("GET", f"/agents/{_seg(agent_id)}/credentials")

    def rotate(
        self,
        agent_id: str,
        credential_id: str,
        *,
        overlap_seconds: int | None = None,
        jwk: Mapping[str, Any] | None = None,
        jwks_uri: str | None = None,
    ) -> R:
        """A replacement credential; the old one works for ``overlap_seconds`` more."""
        body = compact(overlap_seconds=overlap_seconds, jwk=dict(jwk) if jwk else None, jwks_uri=jwks_uri)
        path = f"/agents/{_seg(agent_id)}/credentials/{_seg(credential_id)}/rotate"
        return self._request("POST", path, json=body)

    def revoke(self, agent_id: str, credential_id: str, *, reason: str | None = None) -> R:
        path = f"/agents/{_seg(agent_id)}/credentials/{_seg(credential_id)}/revoke"
        return self._request("POST", path, json=compact(reason=reason))


class Agents(Surface[R]):
    """``/agents``: create, list, get, update, suspend, reinstate, revoke; ``credentials``."""

    def __init__(self, request: Requester[R]) -> None:
        super().__init__(request)
        self.credentials = Credentials(request)

    def create(
        self,
        name: str,
        *,
        team: str | None = None,
        owner: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        customer: str | None = None,
    ) -> R:
        body = compact(
            name=name, team=team, owner=owner, description=description, tags=list(tags) if tags else None,
            customer=customer,
        )  # fmt: skip
        return self._request("POST", "/agents", json=body)

    def list(
        self,
        *,
        team: str | None = None,
        status: Literal["active", "suspended", "revoked"] | None = None,
        tag: str | None = None,
        q: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R:
        """One page (``items``, ``next_cursor``); pass ``cursor=page["next_cursor"]`` for the next."""
        params = {"team": team, "status": status, "tag": tag, "q": q, "limit": limit, "cursor": cursor}
        return self._request("GET", "/agents", params=params)

    def get(self, agent_id: str) -> R:
        return self._request("GET", f"/agents/{_seg(agent_id)}")

    def update(
        self,
        agent_id: str,
        *,
        name: str | None = None,
        team: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> R:
        """Changes only the fields given."""
        body = compact(name=name, team=team, description=description, tags=None if tags is None else list(tags))
        return self._request("PATCH", f"/agents/{_seg(agent_id)}", json=body)

    def suspend(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/suspend", json=compact(reason=reason))

    def reinstate(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/reinstate", json=compact(reason=reason))

    def revoke(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/revoke", json=compact(reason=reason))


class Teams(Surface[R]):
    """``/teams``: create, list, get."""

    def create(self, name: str, *, description: str | None = None) -> R:
        return self._request("POST", "/teams", json=compact(name=name, description=description))

    def list(self) -> R:
        return self._request("GET", "/teams")

    def get(self, team_id: str) -> R:
        return self._request("GET", f"/teams/{_seg(team_id)}")


def _owner(agent: str | None, team: str | None, workflow: str | None) -> str:
    given = [(kind, value) for kind, value in (("agents", agent), ("teams", team), ("workflows", workflow)) if value]
    if len(given) != 1:
        raise ValueError("name exactly one of agent=, team=, workflow=")
    kind, value = given[0]
    return f"/{kind}/{_seg(value)}/budgets"


class Budgets(Surface[R]):
    """Budgets on an agent, a team or a workflow: create, list, get, update, delete, status."""

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

    def list(self, *, agent: str | None = None, team: str | None = None, workflow: str | None = None) -> R:
        return self._request("GET", _owner(agent, team, workflow))

    def get(self, budget_id: str) -> R:
        return self._request("GET", f"/budgets/{_seg(budget_id)}")

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

    def delete(self, budget_id: str) -> R:
        return self._request("DELETE", f"/budgets/{_seg(budget_id)}")

    def status(self, budget_id: str) -> R:
        """Spent, reserved, remaining and the period end."""
        return self._request("GET", f"/budgets/{_seg(budget_id)}/status")


class Policies(Surface[R]):
    """``/policies``: the active Cedar policy set; store a new version; the history."""

    def get(self) -> R:
        return self._request("GET", "/policies")

    def put(
        self,
        sources: Mapping[str, str],
        *,
        schema: str | None = None,
        entities: str | Mapping[str, str] | None = None,
        comment: str | None = None,
    ) -> R:
        """Store and activate a policy set (``{file name: Cedar text}``); refused with 409 if it does not validate."""
        ents = entities if entities is None or isinstance(entities, str) else dict(entities)
        body = compact(sources=dict(sources), schema=schema, entities=ents, comment=comment)
        return self._request("PUT", "/policies", json=body)

    def versions(self) -> R:
        return self._request("GET", "/policies/versions")

    def version(self, version: int) -> R:
        return self._request("GET", f"/policies/versions/{version}")
