"""An agent's credentials: issue (secret, public key, JWKS URL), list, revoke, rotate with overlap.

A secret is 256 random bits, returned once and stored only as a keyed digest. A public key is a
public JWK (never a private or symmetric key) whose ``kid`` is the caller's or its RFC 7638
thumbprint. A JWKS URL must be https (loopback http only when ``cimd_allow_loopback`` is on).

Rotation issues a new credential of the same kind and ends the old one's life ``overlap`` seconds
later (default 24 h; 0 ends it at once): inside the window both authenticate. A credential is
*live* while it is active and its ``expires_at`` (if any) is in the future.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authz.core.crypto import new_token
from authz.identity.agents.errors import Conflict, NotFound
from authz.identity.agents.lifecycle import Agents, get_agent, new_id
from authz.identity.agents.validation import (
    DEFAULT_OVERLAP,
    Problems,
    check_jwks_uri,
    check_overlap,
    check_public_jwk,
    distinct_kid,
)
from authz.identity.agents.view import is_live
from authz.storage.models import AgentCredential

KINDS = ("secret", "public_key", "jwks_uri")


@dataclass(frozen=True)
class Issued:
    credential: AgentCredential
    secret: str | None  # shown once, never stored


def state(cred: AgentCredential, now: float) -> str:
    """``active``, ``revoked`` or ``expired`` (an overlap window that has ended)."""
    if cred.status == "active" and not is_live(cred, now):
        return "expired"
    return cred.status


def list_credentials(deps: Agents, agent_id: str) -> Sequence[AgentCredential]:
    get_agent(deps, agent_id)
    return deps.store.list_credentials(agent_id)


def get_credential(deps: Agents, agent_id: str, credential_id: str) -> AgentCredential:
    cred = deps.store.get_credential(agent_id, credential_id)
    if cred is None:
        raise NotFound(f"no credential {credential_id!r} for agent {agent_id!r}")
    return cred


def issue_credential(
    deps: Agents,
    agent_id: str,
    *,
    kind: str,
    jwk: Any = None,
    jwks_uri: Any = None,
    actor: str,
) -> Issued:
    agent = get_agent(deps, agent_id)
    new, secret = _build(deps, agent_id, kind, jwk, jwks_uri, rotating=None)
    if agent.status == "revoked":
        raise Conflict("the agent is revoked: it can no longer get credentials")
    deps.store.add_credential(new)
    deps.changed(agent_id)
    deps.audit.record("credential.issued", client_id=agent_id, actor=actor, credential=new.id, kind=kind, kid=_kid(new))
    return Issued(new, secret)


def revoke_credential(deps: Agents, agent_id: str, credential_id: str, *, actor: str) -> AgentCredential:
    agent = get_agent(deps, agent_id)
    cred = get_credential(deps, agent_id, credential_id)
    if agent.status == "revoked":
        raise Conflict("the agent is revoked: its credentials are already revoked")
    if cred.status != "active":
        raise Conflict("the credential is already revoked")
    if not deps.store.revoke_credential(agent_id, credential_id, int(time.time())):
        raise Conflict("the credential is already revoked")
    deps.changed(agent_id)
    deps.audit.record("credential.revoked", client_id=agent_id, actor=actor, credential=credential_id, kind=cred.kind)
    return get_credential(deps, agent_id, credential_id)


def rotate_credential(
    deps: Agents,
    agent_id: str,
    credential_id: str,
    *,
    overlap: int = DEFAULT_OVERLAP,
    jwk: Any = None,
    jwks_uri: Any = None,
    actor: str,
) -> tuple[Issued, AgentCredential]:
    """A new credential of the old one's kind; the old one keeps working for ``overlap`` seconds.
    A public key or JWKS URL rotation needs the new ``jwk`` / ``jwks_uri``. Returns (new, old)."""
    agent = get_agent(deps, agent_id)
    old = get_credential(deps, agent_id, credential_id)
    p = Problems()
    overlap = check_overlap(p, overlap)
    p.raise_any()
    new, secret = _build(deps, agent_id, old.kind, jwk, jwks_uri, rotating=old)
    now = int(time.time())
    if agent.status == "revoked":
        raise Conflict("the agent is revoked: it can no longer get credentials")
    if old.status != "active":
        raise Conflict("a revoked credential cannot be rotated")
    if old.expires_at is not None:
        raise Conflict("the credential was already rotated (it is in or past its overlap window)")
    if not deps.store.rotate_credential(agent_id, credential_id, new, now + overlap, now):
        raise Conflict("the credential was rotated or revoked meanwhile")
    deps.changed(agent_id)
    deps.audit.record(
        "credential.rotated",
        client_id=agent_id,
        actor=actor,
        credential=new.id,
        replaces=credential_id,
        kind=old.kind,
        overlap_seconds=overlap,
    )
    return Issued(new, secret), get_credential(deps, agent_id, credential_id)


def _build(
    deps: Agents, agent_id: str, kind: str, jwk: Any, jwks_uri: Any, rotating: AgentCredential | None
) -> tuple[AgentCredential, str | None]:
    """Validate the input for one new credential (raises Invalid, writes nothing)."""
    p = Problems()
    now = int(time.time())
    cred = AgentCredential(id=new_id("cred"), agent_id=agent_id, kind=kind, status="active", created_at=now)
    secret = None
    if kind == "secret":
        if jwk is not None or jwks_uri is not None:
            p.add("kind", "a secret takes no jwk or jwks_uri")
        secret = new_token(32)
        cred.secret_digest = deps.keyring.digest(secret)
    elif kind == "public_key":
        if jwks_uri is not None:
            p.add("jwks_uri", "not allowed for kind public_key")
        public = check_public_jwk(p, jwk)
        if public is not None:
            live = [
                c.public_jwk
                for c in deps.store.list_credentials(agent_id)
                if c.public_jwk is not None and is_live(c, now) and c.id != (rotating.id if rotating else None)
            ]
            distinct_kid(p, public, live)
        cred.public_jwk = public
    elif kind == "jwks_uri":
        if jwk is not None:
            p.add("jwk", "not allowed for kind jwks_uri")
        cred.jwks_uri = check_jwks_uri(p, jwks_uri, deps.settings.cimd_allow_loopback)
    else:
        p.add("kind", f"must be one of {', '.join(KINDS)}")
    p.raise_any()
    return cred, secret


def _kid(cred: AgentCredential) -> str | None:
    return str(cred.public_jwk.get("kid")) if cred.public_jwk else None
