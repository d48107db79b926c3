"""Finding the authorization server: RFC 9728 protected resource metadata, RFC 8414 AS metadata.

RFC 8414 §3.1: for issuer ``https://as/t1`` the document is at
``https://as/.well-known/oauth-authorization-server/t1``; §3.3: "The 'issuer' value returned MUST
be identical to the authorization server's issuer identifier value into which the well-known URI
string was inserted" — compared byte for byte, as MCP 2026-07-28 requires of clients. OIDC
discovery (``openid-configuration``) is the fallback, in MCP's probe order.
RFC 9728 §3.1: the resource's metadata is at ``/.well-known/oauth-protected-resource`` inserted
before the resource's path (then the root, as MCP clients do); §3.3: its ``resource`` must be the
URL the metadata was requested for (we accept the server URL or a parent of it, like the MCP SDK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2


class DiscoveryError(Exception):
    """Metadata could not be found or is not acceptable."""


@dataclass(frozen=True)
class AuthServer:
    issuer: str
    token_endpoint: str
    auth_methods: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ProtectedResource:
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()


def _well_known(url: str, name: str, *, append: bool = False) -> str:
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return f"{origin}{path}/.well-known/{name}" if append else f"{origin}/.well-known/{name}{path}"


async def _get_json(http: httpx2.AsyncClient, url: str) -> dict[str, Any] | None:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise DiscoveryError(f"GET {url} failed: {type(exc).__name__}") from exc
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def discover(http: httpx2.AsyncClient, issuer: str) -> AuthServer:
    """The AS metadata of ``issuer`` (RFC 8414, then OIDC discovery), its ``issuer`` matching exactly."""
    candidates = [_well_known(issuer, "oauth-authorization-server"), _well_known(issuer, "openid-configuration")]
    if urlsplit(issuer).path.strip("/"):
        candidates.append(_well_known(issuer, "openid-configuration", append=True))
    for url in candidates:
        doc = await _get_json(http, url)
        if doc is None:
            continue
        if doc.get("issuer") != issuer:
            raise DiscoveryError(f"metadata at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}")
        token_endpoint = doc.get("token_endpoint")
        if not isinstance(token_endpoint, str) or not token_endpoint:
            raise DiscoveryError(f"metadata at {url} has no token_endpoint")
        return AuthServer(
            issuer=issuer,
            token_endpoint=token_endpoint,
            auth_methods=tuple(_strings(doc.get("token_endpoint_auth_methods_supported"))),
            grant_types=tuple(_strings(doc.get("grant_types_supported"))),
            metadata=doc,
        )
    raise DiscoveryError(f"no authorization server metadata for {issuer}")


async def discover_resource(http: httpx2.AsyncClient, server_url: str) -> ProtectedResource:
    """The MCP server's protected resource metadata (path-inserted URL first, then the root)."""
    candidates = [_well_known(server_url, "oauth-protected-resource")]
    root = _well_known(f"{urlsplit(server_url).scheme}://{urlsplit(server_url).netloc}", "oauth-protected-resource")
    if root not in candidates:
        candidates.append(root)
    for url in candidates:
        doc = await _get_json(http, url)
        if doc is None:
            continue
        resource = doc.get("resource")
        servers = _strings(doc.get("authorization_servers"))
        if not isinstance(resource, str) or not servers:
            raise DiscoveryError(f"metadata at {url} lacks resource or authorization_servers")
        if not _covers(resource, server_url):
            raise DiscoveryError(f"metadata at {url} is for {resource!r}, not {server_url!r}")
        return ProtectedResource(resource, tuple(servers), tuple(_strings(doc.get("scopes_supported"))))
    raise DiscoveryError(f"no protected resource metadata for {server_url}")


def _covers(resource: str, server_url: str) -> bool:
    """``resource`` is the server URL or a parent of it (same origin, path prefix at a segment boundary)."""
    r, s = urlsplit(resource), urlsplit(server_url)
    if (r.scheme.lower(), r.netloc.lower()) != (s.scheme.lower(), s.netloc.lower()):
        return False
    rpath, spath = r.path.rstrip("/"), s.path.rstrip("/")
    return spath == rpath or spath.startswith(rpath + "/")


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
