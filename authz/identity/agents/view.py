"""An agent's client as the grant code sees it: the agent's status, team and live credentials merged
into one :class:`~authz.identity.clients.OAuthClient` (built by :class:`authz.identity.directory.Directory`).

- ``status`` is active only while both the agent and its client row are active;
- ``extra_secret_digests``: the digests of live secrets (several during a rotation overlap);
- ``jwks``: the union of live public keys; without any, ``jwks_uri`` is the newest live JWKS URL
  (one URL at a time: a second JWKS URL credential is used only once the newer one is gone);
- ``extra_auth_methods``: the client-authentication methods the live credentials support;
- ``team_name``, ``owner_name``, ``agent_tags``: what scope policies see of the agent.

``valid_until`` is the earliest end of a live credential's overlap window: the cached value must
be rebuilt then even if no change event arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from authz.identity.clients import OAuthClient
from authz.storage.models import Agent, AgentCredential, Client


def is_live(cred: AgentCredential, now: float) -> bool:
    """Active, and not past the end of its rotation overlap window."""
    return cred.status == "active" and (cred.expires_at is None or cred.expires_at > now)


SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
KEY_METHODS = frozenset({"private_key_jwt"})


def agent_client(
    row: Client,
    agent: Agent | None,
    credentials: Sequence[AgentCredential],
    digest: Callable[[str], str],
    now: float,
    *,
    team_name: str | None = None,
    owner_name: str | None = None,
) -> tuple[OAuthClient, float | None]:
    base = OAuthClient.from_row(row, digest)
    live = [c for c in credentials if is_live(c, now)]
    secrets = tuple(c.secret_digest for c in live if c.kind == "secret" and c.secret_digest)
    keys = [c.public_jwk for c in live if c.kind == "public_key" and c.public_jwk]
    uris = [c.jwks_uri for c in sorted(live, key=lambda c: c.created_at, reverse=True) if c.kind == "jwks_uri"]
    methods: set[str] = set()
    if secrets:
        methods |= SECRET_METHODS
    if keys or uris:
        methods |= KEY_METHODS
    active = agent is not None and agent.status == "active" and row.status == "active"
    client = replace(
        base,
        status="active" if active else "disabled",
        token_endpoint_auth_method="private_key_jwt" if (keys or uris or not secrets) else "client_secret_basic",
        secret_digest=None,
        extra_secret_digests=secrets,
        extra_auth_methods=frozenset(methods),
        jwks={"keys": keys} if keys else None,
        jwks_uri=None if keys else (uris[0] if uris else None),
        agent_id=row.agent_id or row.client_id,
        team_id=agent.team_id if agent is not None else None,
        team_name=team_name,
        owner_name=owner_name,
        agent_tags=tuple(agent.tags or ()) if agent is not None else (),
    )
    ends = [c.expires_at for c in live if c.expires_at is not None]
    return client, (min(ends) if ends else None)
