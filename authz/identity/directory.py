"""Cached, invalidated views of clients and resources: the hot path reads memory, not SQL.

Entries are dropped when the change feed (``change_log``) names them, so a change made on any
replica is seen everywhere within ``cache_staleness`` seconds, and at once on the replica that made it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from authz.core.crypto import Keyring
from authz.identity.agents.view import agent_client
from authz.identity.clients import OAuthClient
from authz.storage.models import Agent, AgentCredential, Team, User
from authz.storage.protocols import ClientStore, ResourceStore


class AgentSource(Protocol):
    def get_agent(self, agent_id: str) -> Agent | None: ...
    def list_credentials(self, agent_id: str) -> Sequence[AgentCredential]: ...
    def get_team(self, team_id: str) -> Team | None: ...
    def get_user(self, user_id: str) -> User | None: ...


@dataclass(frozen=True)
class ResourceInfo:
    uri: str
    name: str
    scopes: frozenset[str]
    active: bool


class Directory:
    """An agent's client (kind ``agent``) merges the agent and its live credentials
    (:func:`authz.identity.agents.view.agent_client`); it is rebuilt when the earliest overlap window ends."""

    def __init__(
        self, clients: ClientStore, resources: ResourceStore, keyring: Keyring, agents: AgentSource | None = None
    ) -> None:
        self._clients_store, self._resources_store, self._keyring = clients, resources, keyring
        self._agents = agents
        self._clients: dict[str, OAuthClient | None] = {}
        self._valid_until: dict[str, float] = {}  # client_id -> rebuild after (agents in an overlap window)
        self._resources: dict[str, ResourceInfo | None] = {}
        self._lock = threading.Lock()

    def client(self, client_id: str) -> OAuthClient | None:
        try:
            value = self._clients[client_id]
            until = self._valid_until.get(client_id)
            if until is None or time.time() < until:
                return value
        except KeyError:
            pass
        row = self._clients_store.get_client(client_id)
        until = None
        if row is None:
            value = None
        elif row.kind == "agent" and self._agents is not None:
            agent_id = row.agent_id or row.client_id
            agent, creds = self._agents.get_agent(agent_id), self._agents.list_credentials(agent_id)
            team = self._agents.get_team(agent.team_id) if agent is not None and agent.team_id else None
            owner = self._agents.get_user(agent.owner) if agent is not None and agent.owner else None
            value, until = agent_client(
                row,
                agent,
                creds,
                self._keyring.digest,
                time.time(),
                team_name=team.name if team is not None else None,
                owner_name=owner.username if owner is not None else None,
            )
        else:
            value = OAuthClient.from_row(row, self._keyring.digest)
        with self._lock:
            if len(self._clients) > 100_000:
                self._clients.clear()
                self._valid_until.clear()
            self._clients[client_id] = value
            if until is not None:
                self._valid_until[client_id] = until
            else:
                self._valid_until.pop(client_id, None)
        return value

    def resource(self, uri: str) -> ResourceInfo | None:
        try:
            return self._resources[uri]
        except KeyError:
            pass
        row = self._resources_store.get_resource(uri)
        value = (
            ResourceInfo(uri=row.uri, name=row.name, scopes=frozenset(row.scopes or ()), active=row.status == "active")
            if row is not None
            else None
        )
        with self._lock:
            self._resources[uri] = value
        return value

    def known_resource(self, uri: str) -> bool:
        info = self.resource(uri)
        return info is not None and info.active

    def resource_for_server(self, client: OAuthClient) -> ResourceInfo | None:
        """The resource a resource-server client introspects for."""
        if client.kind != "resource_server" or not client.resource_uri:
            return None
        return self.resource(client.resource_uri)

    def invalidate(self, topic: str, key: str) -> None:
        with self._lock:
            if topic == "client":
                self._clients.pop(key, None)
                self._valid_until.pop(key, None)
            elif topic == "resource":
                self._resources.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()
            self._valid_until.clear()
            self._resources.clear()
