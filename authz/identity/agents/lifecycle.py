"""The agent lifecycle: create, update, suspend, reinstate, revoke; and teams.

States and transitions (anything else is :class:`~authz.identity.agents.errors.Conflict`, HTTP 409)::

    active --suspend--> suspended --reinstate--> active
    active | suspended --revoke--> revoked      (permanent: only reads afterwards)

Suspending writes an ``agent`` revocation fact, so every live token naming the agent dies at once
(introspection applies it), and the agent's client stops authenticating (its status follows the
agent's), so no new token is issued. Reinstating lets new tokens be issued; tokens issued before the
suspension stay dead, because a revocation fact kills tokens issued at or before it. Revoking does
the same as suspending and also revokes every credential; nothing can undo it.

The functions take an :class:`Agents` (storage Protocols, the revocation view, the audit log) and
the ``actor`` who asks (the admin client id, or ``cli``); every change is audited, never a secret.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from authz.audit.log import AuditLog
from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.identity.agents.errors import Conflict, NotFound
from authz.identity.agents.validation import Problems, check_description, check_name, check_tags, check_team_name
from authz.identity.revocations import RevocationView
from authz.storage.models import Agent, Client, Team
from authz.storage.protocols import AgentStore, TeamStore, UserStore

AGENT_GRANT_TYPES = (
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
)
STATUSES = ("active", "suspended", "revoked")
UNSET: Any = object()


class AgentStorage(AgentStore, TeamStore, UserStore, Protocol):
    """What the lifecycle reads and writes."""


class Invalidates(Protocol):
    def invalidate(self, topic: str, key: str) -> None: ...


class AgentsContext(Protocol):
    """The part of the server's context the lifecycle runs on (:class:`authz.context.Context` has it)."""

    @property
    def store(self) -> AgentStorage: ...
    @property
    def revocations(self) -> RevocationView: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def keyring(self) -> Keyring: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def directory(self) -> Invalidates: ...


@dataclass(frozen=True)
class Agents:
    store: AgentStorage
    revocations: RevocationView
    audit: AuditLog
    keyring: Keyring
    settings: Settings
    directory: Invalidates | None = None  # this replica's cache: dropped at once (others via the feed)

    @classmethod
    def from_context(cls, ctx: AgentsContext) -> Agents:
        return cls(ctx.store, ctx.revocations, ctx.audit, ctx.keyring, ctx.settings, ctx.directory)

    def changed(self, agent_id: str) -> None:
        if self.directory is not None:
            self.directory.invalidate("client", agent_id)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


# -- teams --------------------------------------------------------------------------------------
def create_team(deps: Agents, *, name: str, description: str = "", actor: str) -> Team:
    p = Problems()
    name = check_team_name(p, name)
    description = check_description(p, description)
    p.raise_any()
    now = int(time.time())
    team = Team(id=new_id("team"), name=name, description=description, created_at=now, updated_at=now)
    if not deps.store.add_team(team):
        raise Conflict(f"a team named {name!r} already exists")
    deps.audit.record("team.created", subject=team.id, actor=actor, name=name)
    return team


def find_team(deps: Agents, ref: str) -> Team | None:
    """A team by id or by name."""
    return deps.store.get_team(ref) or deps.store.get_team_by_name(ref)


def get_team(deps: Agents, team_id: str) -> Team:
    team = deps.store.get_team(team_id)
    if team is None:
        raise NotFound(f"no team {team_id!r}")
    return team


# -- agents -------------------------------------------------------------------------------------
def get_agent(deps: Agents, agent_id: str) -> Agent:
    agent = deps.store.get_agent(agent_id)
    if agent is None:
        raise NotFound(f"no agent {agent_id!r}")
    return agent


def create_agent(
    deps: Agents,
    *,
    name: str,
    team: str | None = None,
    owner: str | None = None,
    description: str = "",
    tags: Sequence[str] = (),
    owner_license_id: str | None = None,
    actor: str,
) -> Agent:
    p = Problems()
    name = check_name(p, name)
    description = check_description(p, description)
    tag_list = check_tags(p, list(tags))
    team_id = _team_id(deps, p, team)
    owner_id = _owner_id(deps, p, owner)
    p.raise_any()
    now = int(time.time())
    agent = Agent(
        id=new_id("agt"),
        name=name,
        team_id=team_id,
        owner=owner_id,
        description=description,
        tags=tag_list,
        status="active",
        created_at=now,
        updated_at=now,
        status_changed_at=now,
        owner_license_id=owner_license_id,
    )
    deps.store.create_agent(agent, agent_client_row(agent, now))
    deps.changed(agent.id)
    deps.audit.record("agent.created", client_id=agent.id, subject=owner_id, actor=actor, name=name, team=team_id)
    return agent


def agent_client_row(agent: Agent, now: int) -> Client:
    """The agent's OAuth client: same id, kind ``agent``. Its secrets and keys live in
    ``agent_credentials`` and are merged in by the directory; the row holds none."""
    return Client(
        client_id=agent.id,
        kind="agent",
        client_name=agent.name,
        secret_digest=None,
        token_endpoint_auth_method="private_key_jwt",
        redirect_uris=[],
        grant_types=list(AGENT_GRANT_TYPES),
        scope="",
        allowed_resources=None,
        jwks=None,
        jwks_uri=None,
        application_type="web",
        resource_uri=None,
        status="active",
        extra={},
        created_at=now,
        updated_at=now,
        expires_at=None,
        agent_id=agent.id,
    )


def update_agent(
    deps: Agents,
    agent_id: str,
    *,
    name: str = UNSET,
    description: str = UNSET,
    tags: Sequence[str] = UNSET,
    team: str | None = UNSET,
    actor: str,
) -> Agent:
    """Change name, description, tags or team (``team=None`` removes it). Refused on a revoked agent."""
    current = get_agent(deps, agent_id)
    p = Problems()
    values: dict[str, Any] = {}
    if name is not UNSET:
        values["name"] = check_name(p, name)
    if description is not UNSET:
        values["description"] = check_description(p, description)
    if tags is not UNSET:
        values["tags"] = check_tags(p, tags)
    if team is not UNSET:
        values["team_id"] = _team_id(deps, p, team)
    p.raise_any()
    if current.status == "revoked":
        raise Conflict("the agent is revoked: it can no longer be changed")
    if not values:
        return current
    values["updated_at"] = int(time.time())
    updated = deps.store.update_agent(agent_id, values, when_status=("active", "suspended"))
    if updated is None:
        raise Conflict("the agent is revoked: it can no longer be changed")
    deps.changed(agent_id)
    deps.audit.record(
        "agent.updated", client_id=agent_id, actor=actor, fields=sorted(k for k in values if k != "updated_at")
    )
    return updated


def suspend_agent(deps: Agents, agent_id: str, *, actor: str, reason: str | None = None) -> Agent:
    return _transition(deps, agent_id, "suspended", ("active",), actor=actor, reason=reason)


def reinstate_agent(deps: Agents, agent_id: str, *, actor: str, reason: str | None = None) -> Agent:
    return _transition(deps, agent_id, "active", ("suspended",), actor=actor, reason=reason)


def revoke_agent(deps: Agents, agent_id: str, *, actor: str, reason: str | None = None) -> Agent:
    return _transition(deps, agent_id, "revoked", ("active", "suspended"), actor=actor, reason=reason)


EVENTS = {"suspended": "agent.suspended", "active": "agent.reinstated", "revoked": "agent.revoked"}
VERBS = {"suspended": "suspend", "active": "reinstate", "revoked": "revoke"}
STOP_BASIS = "AI Act Art. 14(4)(e) stop"  # suspension: interrupt the system; live tokens die at once


def _transition(
    deps: Agents, agent_id: str, status: str, allowed_from: tuple[str, ...], *, actor: str, reason: str | None
) -> Agent:
    current = get_agent(deps, agent_id)
    if current.status not in allowed_from:
        raise Conflict(f"cannot {VERBS[status]} an agent that is {current.status}")
    now = int(time.time())
    if status != "active":
        # Kill every live token first: from here on, introspection refuses them on this replica at once.
        deps.revocations.revoke("agent", agent_id, now + deps.settings.refresh_family_ttl, now=now)
    updated = deps.store.change_agent_status(
        agent_id, status, when_status=allowed_from, now=now, revoke_credentials=status == "revoked"
    )
    deps.changed(agent_id)
    if updated is None:  # another administrator changed it between our read and our write
        latest = get_agent(deps, agent_id)
        raise Conflict(f"cannot {VERBS[status]} an agent that is {latest.status}")
    basis = STOP_BASIS if status == "suspended" else None  # the human-oversight stop (its record says so)
    deps.audit.record(EVENTS[status], client_id=agent_id, actor=actor, reason=reason, previous=current.status,
                      basis=basis)  # fmt: skip
    return updated


def _team_id(deps: Agents, p: Problems, ref: object) -> str | None:
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        p.add("team", "must be a team id or name")
        return None
    team = find_team(deps, ref)
    if team is None:
        p.add("team", f"no team {ref!r}")
        return None
    return team.id


def _owner_id(deps: Agents, p: Problems, ref: object) -> str | None:
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str):
        p.add("owner", "must be a user id or username")
        return None
    user = deps.store.get_user(ref) or deps.store.get_user_by_name(ref)
    if user is None:
        p.add("owner", f"no user {ref!r}")
        return None
    return user.id
