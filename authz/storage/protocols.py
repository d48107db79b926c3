"""Narrow repository Protocols: what grants, endpoints and services may ask of storage.

Only ``authz.app`` chooses the implementation (``authz.storage.sql``). Records cross the boundary
as detached ORM rows, which callers treat as read-only values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from authz.storage.models import (
    AuditEvent,
    AuthorizationCode,
    Client,
    Consent,
    Grant,
    RefreshToken,
    Resource,
    Revocation,
    SigningKey,
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


class ReplayStore(Protocol):
    def remember_jti(self, key: str, expires_at: int, now: int) -> bool:
        """Record a JWT id; False when it was already recorded and has not expired (a replay)."""
        ...


class AuditStore(Protocol):
    def append_audit(self, events: Sequence[dict[str, Any]]) -> None: ...
    def list_audit(self, after_seq: int = 0, limit: int = 100) -> Sequence[AuditEvent]: ...


class ChangeFeed(Protocol):
    def publish_change(self, topic: str, key: str) -> None: ...
    def changes_since(self, seq: int) -> tuple[int, list[tuple[str, str]]]: ...


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
    AuditStore,
    ChangeFeed,
    Protocol,
):
    """Everything the server stores; ``authz.storage.sql.SqlStore`` implements it."""
