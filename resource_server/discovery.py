"""Discover the authorization server's endpoints from its RFC 8414 metadata.

RFC 8414 §3 (Obtaining Authorization Server Metadata): "Authorization servers supporting metadata
MUST make a JSON document containing metadata as specified in Section 2 available at a path formed
by inserting a well-known URI string into the authorization server's issuer identifier between
the host component and the path component, if any. By default, the well-known URI string used is
/.well-known/oauth-authorization-server."

RFC 8414 §3.3: "The "issuer" value returned MUST be identical to the authorization server's issuer
identifier value into which the well-known URI string was inserted to create the URL used to
retrieve the metadata. If these values are not identical, the data contained in the response
MUST NOT be used."
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from resource_server.errors import UpstreamUnavailable

__all__ = ["AuthorizationServerMetadata", "Discovery", "metadata_url"]

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/oauth-authorization-server"


def metadata_url(issuer: str) -> str:
    """``https://as/t1`` -> ``https://as/.well-known/oauth-authorization-server/t1`` (§3.1)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


@dataclass(frozen=True, slots=True)
class AuthorizationServerMetadata:
    issuer: str
    introspection_endpoint: str | None
    jwks_uri: str | None


class Discovery:
    """Fetches the metadata once and reuses it for ``ttl`` seconds; failures are not cached."""

    def __init__(self, issuer: str, http: httpx2.AsyncClient, *, ttl: float = 3600.0) -> None:
        self._issuer = issuer
        self._http = http
        self._ttl = ttl
        self._cached: AuthorizationServerMetadata | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> AuthorizationServerMetadata:
        if self._cached is not None and time.monotonic() - self._fetched_at < self._ttl:
            return self._cached
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._fetched_at < self._ttl:
                return self._cached
            self._cached = await self._fetch()
            self._fetched_at = time.monotonic()
            return self._cached

    async def _fetch(self) -> AuthorizationServerMetadata:
        url = metadata_url(self._issuer)
        try:
            response = await self._http.get(url, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            log.warning("authorization server metadata unreachable at %s: %s", url, type(exc).__name__)
            raise UpstreamUnavailable("authorization server metadata unreachable") from exc
        if response.status_code != 200:
            log.warning("authorization server metadata at %s answered %d", url, response.status_code)
            raise UpstreamUnavailable("authorization server metadata unavailable")
        try:
            doc: Any = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable("authorization server metadata is not JSON") from exc
        if not isinstance(doc, dict) or doc.get("issuer") != self._issuer:
            # §3.3: a mismatched issuer MUST NOT be used. A misconfiguration: refuse, never pass.
            log.error("authorization server metadata issuer mismatch: expected %r", self._issuer)
            raise UpstreamUnavailable("authorization server metadata issuer mismatch")
        introspection = doc.get("introspection_endpoint")
        jwks_uri = doc.get("jwks_uri")
        return AuthorizationServerMetadata(
            issuer=self._issuer,
            introspection_endpoint=introspection if isinstance(introspection, str) else None,
            jwks_uri=jwks_uri if isinstance(jwks_uri, str) else None,
        )
