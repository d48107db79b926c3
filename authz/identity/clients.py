"""The client as the grant code sees it: an immutable value implementing Authlib's ClientMixin.

Redirect URIs match exactly (OAuth 2.1 §4.1.1, MCP 2026-07-28 "MUST validate redirect URIs exactly
against pre-registered values"), except that for a loopback redirect URI any port is accepted
(RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the time of the
request for loopback IP redirect URIs, to accommodate clients that obtain an available ephemeral
port from the operating system at the time of the request.").
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authz.storage.models import Client

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    kind: str
    client_name: str
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: frozenset[str] | None  # None: any scope a resource offers
    allowed_resources: frozenset[str] | None  # None: any registered resource
    status: str
    secret_digest: str | None = field(default=None, repr=False)
    jwks: dict[str, Any] | None = field(default=None, repr=False)
    jwks_uri: str | None = None
    resource_uri: str | None = None
    digest: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    # An agent's client (kind "agent"): the agent and team it speaks for, and every secret digest
    # that currently authenticates it (more than one during a rotation overlap).
    agent_id: str | None = None
    team_id: str | None = None
    # What scope policies see of the agent: its team's name, its owner's username and its tags.
    team_name: str | None = None
    owner_name: str | None = None
    agent_tags: tuple[str, ...] = ()
    extra_secret_digests: tuple[str, ...] = field(default=(), repr=False)
    extra_auth_methods: frozenset[str] = frozenset()
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2 client metadata: every token request has a proof

    @classmethod
    def from_row(cls, row: Client, digest: Callable[[str], str]) -> OAuthClient:
        return cls(
            client_id=row.client_id,
            kind=row.kind,
            client_name=row.client_name,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            redirect_uris=tuple(row.redirect_uris or ()),
            grant_types=frozenset(row.grant_types or ()),
            scopes=frozenset(row.scope.split()) if row.scope else None,
            allowed_resources=frozenset(row.allowed_resources) if row.allowed_resources is not None else None,
            status=row.status,
            secret_digest=row.secret_digest,
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
            resource_uri=row.resource_uri,
            digest=digest,
            dpop_bound_access_tokens=(row.extra or {}).get("dpop_bound_access_tokens") is True,
        )

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    # -- Authlib ClientMixin -------------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        requested = scope.split()
        if self.scopes is None:
            return " ".join(requested)
        return " ".join(s for s in requested if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(registered, redirect_uri) for registered in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.digest is None:
            return False
        presented = self.digest(client_secret)
        candidates = (
            (self.secret_digest, *self.extra_secret_digests) if self.secret_digest else self.extra_secret_digests
        )
        return any(hmac.compare_digest(presented, known) for known in candidates)

    def principal_claims(self) -> dict[str, str]:
        """Claims naming who spends when this client acts: the agent and its team (RFC 9068 private claims)."""
        claims = {}
        if self.agent_id:
            claims["agent"] = self.agent_id
        if self.team_id:
            claims["team"] = self.team_id
        return claims

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """The registered method, at every endpoint (token, introspection, revocation); an agent may
        hold credentials of several kinds (secrets and keys) and then accepts each of their methods."""
        return method == self.token_endpoint_auth_method or method in self.extra_auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def may_use_resource(self, uri: str) -> bool:
        return self.allowed_resources is None or uri in self.allowed_resources


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact string match, or the RFC 8252 §7.3 loopback rule (same everything but the port)."""
    if registered == requested:
        return True
    reg, req = urlsplit(registered), urlsplit(requested)
    if reg.scheme != "http" or req.scheme != "http" or reg.hostname not in _loopback_names():
        return False
    return (
        reg.hostname == req.hostname
        and reg.path == req.path
        and reg.query == req.query
        and not req.fragment
        and reg.username is None
        and req.username is None
    )


def _loopback_names() -> tuple[str, ...]:
    return ("127.0.0.1", "::1", "localhost")
