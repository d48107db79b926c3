"""Request and response bodies of the admin API (pydantic: shape checks and the OpenAPI schemas).

Request models check shape only (types, unknown fields); the lifecycle functions check the rules
(lengths, tag syntax, keys, URLs), so the CLI and the API refuse exactly the same input.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from authz.identity.agents.credentials import state
from authz.identity.agents.validation import DEFAULT_OVERLAP, MAX_OVERLAP
from authz.storage.models import Agent, AgentCredential, Team

Status = Literal["active", "suspended", "revoked"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentCreate(_In):
    name: str = Field(description="Display name (1-255 characters).")
    team: str | None = Field(None, description="Team id or name.")
    owner: str | None = Field(None, description="User id or username of the human accountable for the agent.")
    description: str = ""
    tags: list[str] = Field(default_factory=list, description="Up to 32 tags of 1-64 characters.")
    owner_license_id: str | None = Field(
        None, max_length=64, description="The license paying for the agent (compatibility alias; stored as given)."
    )
    customer: str | None = Field(None, description="Bill the agent's events to this customer (see /customers).")


class AgentUpdate(_In):
    """Only the fields present change; ``team: null`` removes the team."""

    name: str | None = None
    team: str | None = None
    description: str | None = None
    tags: list[str] | None = None


class StatusChange(_In):
    reason: str | None = Field(None, max_length=255, description="Recorded in the audit trail.")


class SecretIn(_In):
    kind: Literal["secret"]


class PublicKeyIn(_In):
    kind: Literal["public_key"]
    jwk: dict[str, Any] = Field(description="A public JWK (EC, RSA >= 2048 bits, OKP). kid defaults to its thumbprint.")


class JwksUriIn(_In):
    kind: Literal["jwks_uri"]
    jwks_uri: str = Field(description="https URL of the agent's JWK Set.")


CredentialIn = Annotated[SecretIn | PublicKeyIn | JwksUriIn, Field(discriminator="kind")]
CREDENTIAL_IN: TypeAdapter[SecretIn | PublicKeyIn | JwksUriIn] = TypeAdapter(CredentialIn)


class RotateIn(_In):
    overlap_seconds: int = Field(
        DEFAULT_OVERLAP, description=f"Seconds the old credential keeps working (0-{MAX_OVERLAP}; 0 = at once)."
    )
    jwk: dict[str, Any] | None = Field(None, description="The new public key (public_key credentials).")
    jwks_uri: str | None = Field(None, description="The new JWK Set URL (jwks_uri credentials).")


class TeamCreate(_In):
    name: str
    description: str = ""


class AgentOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    owner: str | None
    description: str
    tags: list[str]
    status: Status
    created_at: int
    updated_at: int
    status_changed_at: int
    owner_license_id: str | None = None

    @classmethod
    def of(cls, a: Agent) -> AgentOut:
        return cls(
            id=a.id,
            name=a.name,
            team_id=a.team_id,
            owner=a.owner,
            description=a.description,
            tags=list(a.tags or ()),
            status=a.status,
            created_at=a.created_at,
            updated_at=a.updated_at,
            status_changed_at=a.status_changed_at,
            owner_license_id=a.owner_license_id,
        )


class AgentList(BaseModel):
    items: list[AgentOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class CredentialOut(BaseModel):
    """A credential as listed: never a secret nor its digest."""

    id: str
    agent_id: str
    kind: Literal["secret", "public_key", "jwks_uri"]
    status: Literal["active", "revoked", "expired"]
    created_at: int
    expires_at: int | None = Field(description="End of the overlap window after a rotation.")
    revoked_at: int | None
    last_used_at: int | None
    kid: str | None = None
    public_jwk: dict[str, Any] | None = None
    jwks_uri: str | None = None

    @classmethod
    def of(cls, c: AgentCredential) -> CredentialOut:
        return cls(
            id=c.id,
            agent_id=c.agent_id,
            kind=c.kind,
            status=state(c, time.time()),
            created_at=c.created_at,
            expires_at=c.expires_at,
            revoked_at=c.revoked_at,
            last_used_at=c.last_used_at,
            kid=str(c.public_jwk["kid"]) if c.public_jwk and "kid" in c.public_jwk else None,
            public_jwk=c.public_jwk,
            jwks_uri=c.jwks_uri,
        )


class IssuedCredential(CredentialOut):
    secret: str | None = Field(None, description="The new secret (kind secret): shown once, never again.")


class CredentialList(BaseModel):
    items: list[CredentialOut]


class Rotated(BaseModel):
    new: IssuedCredential
    old: CredentialOut


class TeamOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, t: Team) -> TeamOut:
        return cls(id=t.id, name=t.name, description=t.description, created_at=t.created_at, updated_at=t.updated_at)


class TeamList(BaseModel):
    items: list[TeamOut]
