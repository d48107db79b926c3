"""SQLAlchemy 2 models of the core: clients, resources, users, grants, keys, agents, audit and revocations.

Secrets, authorization codes and refresh tokens are stored only as keyed digests
(``authz.core.crypto.digest``); signing keys only encrypted with the key-encryption key. Times are
integer Unix seconds (UTC), which compare and index the same on SQLite and PostgreSQL.
The schema changes only through Alembic revisions in ``migrations/``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class Client(Base):
    """An OAuth client: pre-registered, dynamically registered, a CIMD document, or a resource server."""

    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # static | dynamic | cimd | resource_server
    client_name: Mapped[str] = mapped_column(String(255), default="")
    secret_digest: Mapped[str | None] = mapped_column(String(128), nullable=True)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(Text, default="")  # scopes this client may ever get; "" = any offered
    allowed_resources: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # None = any registered
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    application_type: Mapped[str] = mapped_column(String(16), default="web")
    resource_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # resource servers only
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # CIMD cache expiry
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # kind "agent" only


class Resource(Base):
    """A protected resource (an MCP server), identified by its canonical URI (RFC 8707 §2)."""

    __tablename__ = "resources"
    uri: Mapped[str] = mapped_column(String(2048), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    scopes: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    """A local human user who signs in at /authorize (argon2id password hash)."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    groups: Mapped[list[str]] = mapped_column(default=list)  # what scope policies see as Authz::Group


class Consent(Base):
    """Remembered consent: this user let this client use these scopes at this resource."""

    __tablename__ = "consents"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    resource: Mapped[str] = mapped_column(String(2048), primary_key=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class Grant(Base):
    """A delegation a user gave a client: the family of an authorization code and its refresh tokens."""

    __tablename__ = "grants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(512), index=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    resource: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuthorizationCode(Base):
    """A one-time authorization code (RFC 6749 §4.1.2), stored by digest, consumed atomically."""

    __tablename__ = "authorization_codes"
    code_digest: Mapped[str] = mapped_column(String(128), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(512))
    user_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(Text, default="")
    resource: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str] = mapped_column(String(128))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)  # RFC 9449 §10


class RefreshToken(Base):
    """A refresh token (by digest). Spent on use; presenting a spent one revokes its grant (family)."""

    __tablename__ = "refresh_tokens"
    token_digest: Mapped[str] = mapped_column(String(128), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(Text, default="")
    resource: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    spent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)  # bound (public clients)


class SigningKey(Base):
    """A signing key. Status: next (published, not signing) -> active (signing) -> retired (published)."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    activated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    publish_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Revocation(Base):
    """One revocation fact: a token (jti), a grant (family), or a whole principal. Append-only."""

    __tablename__ = "revocations"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # jti | grant | client | agent
    value: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[int] = mapped_column(BigInteger)  # the fact can be forgotten after this
    created_at: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_revocations_kind_value", "kind", "value"),)


class UsedJti(Base):
    """A JWT id seen in a client assertion or grant assertion, kept until the JWT expires (replay guard)."""

    __tablename__ = "used_jtis"
    key: Mapped[str] = mapped_column(String(600), primary_key=True)  # "<purpose>|<iss>|<jti>"
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditEvent(Base):
    """An append-only, hash-chained audit record. Never a secret or a raw token."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure
    client_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the record's leaf in the Merkle tree (authz.audit.merkle); None for records written before it existed
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    # the RFC 8785 bytes the leaf hashes, stored at append time (exports copy them; verify re-derives them)
    line: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ChangeLog(Base):
    """A notification that a cached record changed; replicas poll it to invalidate their caches."""

    __tablename__ = "change_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(32))  # client | resource | key | revocation
    key: Mapped[str] = mapped_column(String(2048))
    at: Mapped[int] = mapped_column(BigInteger)


class Team(Base):
    """A group of agents that budgets and attribution can key on."""

    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # team_...
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Agent(Base):
    """An agent identity, separate from the human who created it; also an OAuth client (same id)."""

    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # agt_...
    name: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # user id of the creator
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended | revoked
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    status_changed_at: Mapped[int] = mapped_column(BigInteger)
    # the license that pays for this agent: suspending or revoking it suspends the agent
    owner_license_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    __table_args__ = (Index("ix_agents_created_at_id", "created_at", "id"),)


class AgentCredential(Base):
    """One credential of an agent: a secret (by digest only), a public JWK, or a JWKS URL."""

    __tablename__ = "agent_credentials"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # cred_...
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # secret | public_key | jwks_uri
    secret_digest: Mapped[str | None] = mapped_column(String(128), nullable=True)
    public_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # end of a rotation overlap
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TrustedIssuer(Base):
    """A JWT issuer this server trusts: an enterprise IdP (ID-JAG assertions) or a subject-token issuer.

    Keys are an inline public JWK Set or a ``jwks_uri`` fetched (SSRF-safe) and cached; ``algorithms``
    is the explicit allow-list of asymmetric JWS algorithms accepted from this issuer.
    """

    __tablename__ = "trusted_issuers"
    issuer: Mapped[str] = mapped_column(String(2048), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # idp | subject
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    algorithms: Mapped[list[str]] = mapped_column(default=list)
    audience: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # None: our issuer
    created_at: Mapped[int] = mapped_column(BigInteger)
