"""Narrow repository Protocols: what grants, endpoints and services may ask of storage.

Only ``authz.app`` chooses the implementation (``authz.storage.sql``). Records cross the boundary
as detached ORM rows, which callers treat as read-only values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from authz.storage.models import (
    Agent,
    AgentCredential,
    AuditEvent,
    AuthorizationCode,
    Client,
    Consent,
    Grant,
    RefreshToken,
    Resource,
    Revocation,
    SigningKey,
    Team,
    User,
)


class ClientStore(Protocol):
    def get_client(self, client_id: str) -> Client | None: ...
    def list_clients(self) -> Sequence[Client]: ...
    def put_client(self, client: Client) -> None: ...
    def delete_client(self, client_id: str) -> bool: ...
    def set_client_status(self, client_id: str, status: str) -> bool: ...


class ResourceStore(Protocol):
    def get_resource(self, uri: str) -> Resource | None: ...
    def list_resources(self) -> Sequence[Resource]: ...
    def put_resource(self, resource: Resource) -> None: ...
    def delete_resource(self, uri: str) -> bool: ...


class UserStore(Protocol):
    def get_user(self, user_id: str) -> User | None: ...
    def get_user_by_name(self, username: str) -> User | None: ...
    def add_user(self, user: User) -> None: ...
    def set_user_groups(self, user_id: str, groups: Sequence[str]) -> bool: ...
    def list_users(self) -> Sequence[User]: ...


class ConsentStore(Protocol):
    def get_consent(self, user_id: str, client_id: str, resource: str) -> Consent | None: ...
    def put_consent(self, consent: Consent) -> None: ...


class CodeStore(Protocol):
    def save_code(self, code: AuthorizationCode, grant: Grant) -> None: ...
    def consume_code(self, code_digest: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        """Atomically mark a code consumed. Returns (code, first_use); a replay gives (code, False)."""
        ...


class GrantStore(Protocol):
    def get_grant(self, grant_id: str) -> Grant | None: ...
    def revoke_grant(self, grant_id: str, now: int) -> Grant | None: ...
    def save_refresh_token(self, token: RefreshToken) -> None: ...
    def spend_refresh_token(self, token_digest: str, now: int) -> tuple[RefreshToken | None, bool]:
        """Atomically spend a refresh token. Returns (token, first_use); reuse gives (token, False)."""
        ...

    def find_refresh_token(self, token_digest: str) -> RefreshToken | None: ...


class KeyStore(Protocol):
    def list_keys(self) -> Sequence[SigningKey]: ...
    def put_key(self, key: SigningKey) -> None: ...
    def update_keys(self, keys: Sequence[SigningKey]) -> None: ...


class RevocationStore(Protocol):
    def add_revocation(self, kind: str, value: str, expires_at: int, now: int) -> None: ...
    def revocations_since(self, seq: int, now: int) -> Sequence[Revocation]: ...


class JtiBatchWriter(Protocol):
    local: bool  # the store is a local file (SQLite): writing it never waits for a network round trip

    def remember(self, rows: Sequence[tuple[str, int]], now: int) -> set[str]:
        """Record ``(key, expires_at)`` rows (distinct keys) in one transaction; the keys recorded
        (a key already recorded and not expired is a replay, absent from the answer)."""
        ...

    def close(self) -> None: ...


class ReplayStore(Protocol):
    def remember_jti(self, key: str, expires_at: int, now: int) -> bool:
        """Record a JWT id; False when it was already recorded and has not expired (a replay)."""
        ...

    def jti_writer(self) -> JtiBatchWriter:
        """A writer for batches of JWT ids on a connection of its own (one thread uses it)."""
        ...


class AuditReader(Protocol):
    def list_audit(self, after_seq: int = 0, limit: int = 100) -> Sequence[AuditEvent]: ...


class AuditStore(AuditReader, Protocol):
    """Appends records: only ``authz.audit.store.AuditTreeStore`` (chain, tree and pseudonyms together)."""

    def append_audit(self, events: Sequence[dict[str, Any]]) -> None: ...


class ChangeFeed(Protocol):
    def publish_change(self, topic: str, key: str) -> None: ...
    def changes_since(self, seq: int) -> tuple[int, list[tuple[str, str]]]: ...


class TeamStore(Protocol):
    def add_team(self, team: Team) -> bool:
        """Insert a team; False when its name is taken."""
        ...

    def get_team(self, team_id: str) -> Team | None: ...
    def get_team_by_name(self, name: str) -> Team | None: ...
    def list_teams(self) -> Sequence[Team]: ...


class AgentStore(Protocol):
    """Agents and their credentials. Every write publishes a ``client`` change for the agent id, so
    every replica's directory drops the agent's cached client."""

    def create_agent(self, agent: Agent, client: Client) -> None:
        """Insert the agent and its OAuth client (same id) in one transaction."""
        ...

    def get_agent(self, agent_id: str) -> Agent | None: ...
    def list_agents(
        self,
        *,
        team_id: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        name_contains: str | None = None,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> Sequence[Agent]:
        """Agents ordered by (created_at, id), strictly after the ``after`` key (keyset pagination)."""
        ...

    def update_agent(self, agent_id: str, values: dict[str, Any], *, when_status: Sequence[str]) -> Agent | None:
        """Set ``values`` when the agent's status is one of ``when_status``; None when it is not (or no agent)."""
        ...

    def change_agent_status(
        self, agent_id: str, status: str, *, when_status: Sequence[str], now: int, revoke_credentials: bool = False
    ) -> Agent | None:
        """Move the agent (and its client row) to ``status`` when it is in ``when_status``, atomically."""
        ...

    def add_credential(self, credential: AgentCredential) -> None: ...
    def get_credential(self, agent_id: str, credential_id: str) -> AgentCredential | None: ...
    def list_credentials(self, agent_id: str) -> Sequence[AgentCredential]: ...
    def revoke_credential(self, agent_id: str, credential_id: str, now: int) -> bool:
        """Revoke an active credential; False when it was not active."""
        ...

    def rotate_credential(
        self, agent_id: str, credential_id: str, new: AgentCredential, old_expires_at: int, now: int
    ) -> bool:
        """Add ``new`` and end the old credential's life at ``old_expires_at`` in one transaction; False (and
        nothing written) when the old one is not active, not live, or already rotated."""
        ...


class Storage(
    ClientStore,
    ResourceStore,
    UserStore,
    ConsentStore,
    CodeStore,
    GrantStore,
    KeyStore,
    RevocationStore,
    ReplayStore,
    AuditReader,
    ChangeFeed,
    TeamStore,
    AgentStore,
    Protocol,
):
    """Everything the server stores; ``authz.storage.sql.SqlStore`` implements it."""
