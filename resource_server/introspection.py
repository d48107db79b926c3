"""RFC 7662 token introspection client, authenticated with ``client_secret_basic``.

RFC 7662 §2.1: "The protected resource calls the introspection endpoint using an HTTP POST request
with parameters sent as "application/x-www-form-urlencoded" data [...] token REQUIRED [...]
token_type_hint OPTIONAL". "To prevent token scanning attacks, the endpoint MUST also require some
form of authorization to access this endpoint".

RFC 7662 §2.2: "active REQUIRED. Boolean indicator of whether or not the presented token is
currently active. [...] If the introspection call is properly authorized but the token is not
active, does not exist on this server, or the protected resource is not allowed to introspect
this particular token, then the authorization server MUST return an introspection response with
the "active" field set to "false"."

RFC 7662 §4: the protected resource must still check that the token is usable *here*: its ``aud``
must contain this resource (RFC 8707 §2, MCP: "MUST only accept tokens valid for its own
resources"), ``iss`` must be our issuer and ``exp`` must not be past.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from resource_server.cache import TokenCache
from resource_server.context import TokenInfo
from resource_server.discovery import Discovery
from resource_server.errors import InvalidToken, UpstreamUnavailable

__all__ = ["IntrospectionClient", "IntrospectionVerifier", "validate_introspection"]

log = logging.getLogger(__name__)


def validate_introspection(
    response: Mapping[str, Any], *, resource: str, issuer: str, leeway: float = 0.0, now: float | None = None
) -> TokenInfo:
    """Turn an introspection response into a :class:`TokenInfo`, or raise :class:`InvalidToken`."""
    if response.get("active") is not True:
        raise InvalidToken("The access token is not active")
    aud = response.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if resource not in audiences:
        raise InvalidToken("The access token was not issued for this resource")
    if "iss" in response and response["iss"] != issuer:
        raise InvalidToken("The access token was issued by another authorization server")
    exp = response.get("exp")
    current = time.time() if now is None else now
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp + leeway <= current:
        raise InvalidToken("The access token has expired")
    token_type = response.get("token_type")
    if isinstance(token_type, str) and token_type.lower() not in ("bearer", "dpop", "access_token"):
        raise InvalidToken("The token is not an access token")
    return TokenInfo.from_claims(response)


class IntrospectionClient:
    """Posts ``token`` + ``token_type_hint=access_token`` over one pooled HTTP client."""

    def __init__(self, discovery: Discovery, http: httpx2.AsyncClient, *, client_id: str, client_secret: str) -> None:
        self._discovery = discovery
        self._http = http
        self._auth = httpx2.BasicAuth(client_id, client_secret)
        self.calls = 0  # introspection requests sent (for metrics and tests)

    async def introspect(self, token: str) -> Mapping[str, Any]:
        metadata = await self._discovery.get()
        endpoint = metadata.introspection_endpoint
        if endpoint is None:
            log.error("authorization server metadata has no introspection_endpoint")
            raise UpstreamUnavailable("authorization server does not offer introspection")
        self.calls += 1
        try:
            response = await self._http.post(
                endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
                headers={"accept": "application/json"},
            )
        except httpx2.HTTPError as exc:
            log.warning("introspection endpoint unreachable: %s", type(exc).__name__)
            raise UpstreamUnavailable("introspection endpoint unreachable") from exc
        if response.status_code != 200:
            # 401 here means our own credentials are wrong: a misconfiguration, not the caller's fault.
            log.warning("introspection endpoint answered %d", response.status_code)
            raise UpstreamUnavailable("introspection failed")
        try:
            body: Any = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable("introspection response is not JSON") from exc
        if not isinstance(body, dict):
            raise UpstreamUnavailable("introspection response is not a JSON object")
        return body


class IntrospectionVerifier:
    """Validates tokens by introspection, through a single-flight, exp-bounded cache."""

    def __init__(
        self,
        client: IntrospectionClient,
        cache: TokenCache,
        *,
        resource: str,
        issuer: str,
        leeway: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.cache = cache
        self._resource = resource
        self._issuer = issuer
        self._leeway = leeway
        self._clock = clock

    async def verify(self, token: str) -> TokenInfo:
        async def load() -> TokenInfo:
            response = await self.client.introspect(token)
            return validate_introspection(
                response, resource=self._resource, issuer=self._issuer, leeway=self._leeway, now=self._clock()
            )

        return await self.cache.get_or_load(token, load)
