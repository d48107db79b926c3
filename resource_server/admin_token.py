"""``AdminApiToken``: the resource server's own token for the AS's admin API (``{issuer}/api/v1``).

The budget hook (scope ``budgets:use``) and the usage reporter (scope ``metering:write``) call the
admin API as the MCP server itself: an RFC 6749 §4.4 ``client_credentials`` grant with the RFC 8707
``resource`` of the admin API, at the token endpoint named by the AS's RFC 8414 metadata (whose
``issuer`` must be the one configured, §3.3). The token is cached until 30 s before it expires (at
least half its lifetime); concurrent callers share one request; ``forget()`` after a 401.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from resource_server.discovery import metadata_url

__all__ = ["ADMIN_API_PATH", "AdminApiToken", "AdminTokenError"]

ADMIN_API_PATH = "/api/v1"


class AdminTokenError(httpx2.HTTPError):
    """The AS could not be asked, or refused, for an admin-API token (never includes the secret)."""


class AdminApiToken:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        issuer: str,
        client_id: str,
        client_secret: str,
        scope: str,
        *,
        api_base: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.api_base = (api_base or issuer.rstrip("/") + ADMIN_API_PATH).rstrip("/")
        self.scope = scope
        self._http = http
        self._auth = (client_id, client_secret)
        self._clock = clock
        self._value: str | None = None
        self._expires = 0.0
        self._token_endpoint: str | None = None
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached token (the admin API answered 401: expired, revoked, keys rotated)."""
        self._value = None

    async def get(self) -> str:
        if self._value is not None and self._clock() < self._expires:
            return self._value
        async with self._lock:
            if self._value is not None and self._clock() < self._expires:
                return self._value
            try:
                r = await self._http.post(
                    await self._endpoint(),
                    data={"grant_type": "client_credentials", "resource": self.api_base, "scope": self.scope},
                    auth=self._auth,
                )
                if r.status_code != 200:
                    raise AdminTokenError(f"admin API token refused ({r.status_code}): {r.text[:200]}")
                body: Mapping[str, Any] = r.json()
                value, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
            except (ValueError, KeyError, TypeError) as exc:
                raise AdminTokenError(f"admin API token response unusable: {type(exc).__name__}") from exc
            self._value, self._expires = value, self._clock() + max(lifetime - 30, lifetime / 2)
            return value

    async def _endpoint(self) -> str:
        if self._token_endpoint is None:
            r = await self._http.get(metadata_url(self.issuer))
            r.raise_for_status()
            meta: Mapping[str, Any] = r.json()
            if meta.get("issuer") != self.issuer:
                raise AdminTokenError("the AS metadata names another issuer")
            self._token_endpoint = str(meta["token_endpoint"])
        return self._token_endpoint
