"""Registering clients and resources: the one place that creates their rows (CLI, DCR, admin API)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authz.core.crypto import Keyring, new_token
from authz.core.settings import is_loopback_url
from authz.oauth.errors import InvalidTargetError
from authz.oauth.rfc8707 import validate_resource_uri as _validate_uri
from authz.storage.models import Client, Resource
from authz.storage.protocols import ClientStore, ResourceStore

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
)


def validate_resource_uri(uri: str) -> str:
    """The canonical resource URI, or ValueError with the reason (registration input, not a request)."""
    try:
        return _validate_uri(uri)
    except InvalidTargetError as exc:
        raise ValueError(exc.description) from exc


def check_redirect_uri(uri: str) -> None:
    """MCP (communication security): "All redirect URIs MUST be either localhost or use HTTPS."
    RFC 6749 §3.1.2: absolute, and "MUST NOT include a fragment component"."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc or "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must be absolute and without a fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(uri)):
        return
    raise ValueError(f"redirect URI {uri!r} must use https, or http on a loopback host")


@dataclass(frozen=True)
class Registered:
    client_id: str
    client_secret: str | None  # shown once, never stored


def register_client(
    store: ClientStore,
    keyring: Keyring,
    *,
    client_id: str | None = None,
    kind: str = "static",
    name: str = "",
    auth_method: str = "client_secret_basic",
    redirect_uris: Sequence[str] = (),
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    scope: str = "",
    resources: Sequence[str] | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    application_type: str = "web",
    resource_uri: str | None = None,
    expires_at: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Registered:
    if auth_method not in AUTH_METHODS:
        raise ValueError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    bad = [g for g in grant_types if g not in GRANT_TYPES]
    if bad:
        raise ValueError(f"unsupported grant types: {', '.join(bad)}")
    for uri in redirect_uris:
        check_redirect_uri(uri)
    if "authorization_code" in grant_types and not redirect_uris:
        raise ValueError("the authorization_code grant needs at least one redirect URI")
    if auth_method == "none" and "client_credentials" in grant_types:
        raise ValueError("client_credentials needs an authenticated (confidential) client")
    if auth_method == "private_key_jwt" and not (jwks or jwks_uri):
        raise ValueError("private_key_jwt needs the client's public keys (jwks or jwks_uri)")
    secret = new_token() if auth_method in ("client_secret_basic", "client_secret_post") else None
    now = int(time.time())
    client = Client(
        client_id=client_id or "c_" + new_token(12),
        kind=kind,
        client_name=name,
        secret_digest=keyring.digest(secret) if secret else None,
        token_endpoint_auth_method=auth_method,
        redirect_uris=list(redirect_uris),
        grant_types=list(grant_types),
        scope=scope,
        allowed_resources=[validate_resource_uri(r) for r in resources] if resources is not None else None,
        jwks=jwks,
        jwks_uri=jwks_uri,
        application_type=application_type,
        resource_uri=resource_uri,
        status="active",
        extra=extra or {},
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    store.put_client(client)
    return Registered(client.client_id, secret)


def register_resource(
    resources: ResourceStore, clients: ClientStore, keyring: Keyring, uri: str, scopes: Sequence[str], name: str = ""
) -> Registered:
    """Register an MCP server and the confidential client it introspects with (RFC 7662 §2.1)."""
    canonical = validate_resource_uri(uri)
    if canonical != uri:
        raise ValueError(f"use the canonical form of the resource URI: {canonical}")
    now = int(time.time())
    resources.put_resource(
        Resource(
            uri=uri, name=name, scopes=list(dict.fromkeys(scopes)), status="active", created_at=now, updated_at=now
        )
    )
    return register_client(
        clients,
        keyring,
        kind="resource_server",
        name=f"resource server {name or uri}",
        grant_types=(),
        auth_method="client_secret_basic",
        resource_uri=uri,
    )
