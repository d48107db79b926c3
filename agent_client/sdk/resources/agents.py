"""Agents, their credentials, and teams: ``/agents``, ``/agents/{id}/credentials``, ``/teams``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Requester, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg
from agent_client.sdk.resources.oversight import AiAct


class Credentials(Surface[R]):
    """``/agents/{id}/credentials``: issue, list, rotate, revoke."""

    @operation("POST /agents/{}/credentials")
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

    @operation("GET /agents/{}/credentials")
    def list(self, agent_id: str) -> R:
        return self._request("GET", f"/agents/{_seg(agent_id)}/credentials")

    @operation("POST /agents/{}/credentials/{}/rotate")
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

    @operation("POST /agents/{}/credentials/{}/revoke")
    def revoke(self, agent_id: str, credential_id: str, *, reason: str | None = None) -> R:
        path = f"/agents/{_seg(agent_id)}/credentials/{_seg(credential_id)}/revoke"
        return self._request("POST", path, json=compact(reason=reason))


class Agents(Surface[R]):
    """``/agents``: create, list, get, update, suspend, reinstate, revoke; ``credentials``."""

    def __init__(self, request: Requester[R]) -> None:
        super().__init__(request)
        self.credentials = Credentials(request)
        self.ai_act: AiAct[R] = AiAct(request)

    @operation("POST /agents")
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

    @operation("GET /agents")
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

    @operation("GET /agents/{}")
    def get(self, agent_id: str) -> R:
        return self._request("GET", f"/agents/{_seg(agent_id)}")

    @operation("PATCH /agents/{}")
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

    @operation("POST /agents/{}/suspend")
    def suspend(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/suspend", json=compact(reason=reason))

    @operation("POST /agents/{}/reinstate")
    def reinstate(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/reinstate", json=compact(reason=reason))

    @operation("POST /agents/{}/revoke")
    def revoke(self, agent_id: str, *, reason: str | None = None) -> R:
        return self._request("POST", f"/agents/{_seg(agent_id)}/revoke", json=compact(reason=reason))


class Teams(Surface[R]):
    """``/teams``: create, list, get."""

    @operation("POST /teams")
    def create(self, name: str, *, description: str | None = None) -> R:
        return self._request("POST", "/teams", json=compact(name=name, description=description))

    @operation("GET /teams")
    def list(self) -> R:
        return self._request("GET", "/teams")

    @operation("GET /teams/{}")
    def get(self, team_id: str) -> R:
        return self._request("GET", f"/teams/{_seg(team_id)}")
