"""``TokenSource``: one cached access token for one MCP server, refreshed shortly before it expires.

The token is requested with the source's credential and grant for exactly one ``resource``
(RFC 8707; MCP clients MUST send it) and reused until ``skew`` seconds before ``expires_in`` runs
out. Concurrent callers share one refresh (single flight). ``invalidate`` drops a token the
resource server refused (401), so the next call fetches a new one.

With ``dpop=DpopSession(...)`` every token request carries a DPoP proof (RFC 9449 §5), a
``use_dpop_nonce`` answer (§8) is retried once with the server's nonce, and the token comes back
``token_type: DPoP`` (present it with :class:`agent_client.dpop_auth.DpopAuth`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from agent_client.credentials import ClientCredential
from agent_client.discovery import AuthServer, discover, discover_resource
from agent_client.dpop import DpopSession, is_nonce_challenge
from agent_client.grants import ClientCredentials, Grant

DEFAULT_SKEW = 30.0
TIMEOUT = 10.0


class TokenError(Exception):
    """The token endpoint refused (``error``/``description`` from RFC 6749 §5.2) or answered garbage."""

    def __init__(self, error: str, description: str = "", status: int = 0) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    scope: str | None
    expires_at: float | None  # monotonic clock; None: unknown (kept until refused)
    issued_token_type: str | None = None
    token_type: str = "Bearer"  # or "DPoP" (RFC 9449 §5.1)


class TokenSource:
    def __init__(
        self,
        server: AuthServer,
        resource: str,
        credential: ClientCredential,
        *,
        grant: Grant | None = None,
        scope: str | None = None,
        skew: float = DEFAULT_SKEW,
        http: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        dpop: DpopSession | None = None,
    ) -> None:
        self.dpop = dpop
        self.server, self.resource, self.credential = server, resource, credential
        self.grant: Grant = grant or ClientCredentials()
        self.scope, self.skew, self._clock = scope, skew, clock
        self._http = http or httpx2.AsyncClient(timeout=TIMEOUT)
        self._own_http = http is None
        self._token: Token | None = None
        self._lock = anyio.Lock()
        self.requests = 0  # token requests made (observability and tests)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    async def for_issuer(
        cls, issuer: str, resource: str, credential: ClientCredential, *, http: httpx2.AsyncClient | None = None,
        **kwargs: Any,
    ) -> TokenSource:  # fmt: skip
        """Discover ``issuer``'s metadata (RFC 8414, exact issuer match) and build a source for ``resource``."""
        client = http or httpx2.AsyncClient(timeout=TIMEOUT)
        try:
            server = await discover(client, issuer)
        except BaseException:
            if http is None:
                await client.aclose()
            raise
        source = cls(server, resource, credential, http=client, **kwargs)
        source._own_http = http is None
        return source

    @classmethod
    async def for_server(
        cls, server_url: str, credential: ClientCredential, *, http: httpx2.AsyncClient | None = None, **kwargs: Any
    ) -> TokenSource:
        """Discover the MCP server's resource metadata (RFC 9728), then its authorization server."""
        client = http or httpx2.AsyncClient(timeout=TIMEOUT)
        try:
            prm = await discover_resource(client, server_url)
            server = await discover(client, prm.authorization_servers[0])
        except BaseException:
            if http is None:
                await client.aclose()
            raise
        source = cls(server, prm.resource, credential, http=client, **kwargs)
        source._own_http = http is None
        return source

    # -- tokens ----------------------------------------------------------------------------
    def _fresh(self, token: Token | None) -> bool:
        return token is not None and (token.expires_at is None or self._clock() < token.expires_at - self.skew)

    async def token(self) -> str:
        """A valid access token: the cached one, or a new one (one request however many callers wait)."""
        return (await self.current()).access_token

    async def current(self) -> Token:
        """The valid :class:`Token` (with its ``token_type``): the cached one, or a new one."""
        token = self._token
        if token is not None and self._fresh(token):
            return token
        async with self._lock:
            token = self._token
            if token is None or not self._fresh(token):
                token = await self._request()
                self._token = token
            return token

    def invalidate(self, access_token: str | None = None) -> None:
        """Forget the cached token (only if it is ``access_token``, when given)."""
        if self._token is not None and (access_token is None or self._token.access_token == access_token):
            self._token = None

    async def _request(self) -> Token:
        form = await self.grant.form()
        form["resource"] = self.resource
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        self.credential.apply(form, headers, self.server.issuer)
        started = self._clock()
        response = await self._post(form, headers)
        if self.dpop is not None and self.dpop.remember(self.server.token_endpoint, response):
            if is_nonce_challenge(response):  # RFC 9449 §8: sign again with the server's nonce
                self.credential.apply(form, headers, self.server.issuer)  # a fresh assertion jti too
                response = await self._post(form, headers)
                self.dpop.remember(self.server.token_endpoint, response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TokenError("invalid_response", f"HTTP {response.status_code}, not JSON", response.status_code)
        if response.status_code != 200:
            raise TokenError(str(body.get("error", "server_error")), str(body.get("error_description", "")),
                             response.status_code)  # fmt: skip
        access, kind = body.get("access_token"), str(body.get("token_type", ""))
        accepted = ("bearer", "dpop") if self.dpop is not None else ("bearer",)
        if not isinstance(access, str) or not access or kind.lower() not in accepted:
            raise TokenError("invalid_response", f"no {' or '.join(accepted)} access_token", response.status_code)
        expires_in = body.get("expires_in")
        expires_at = started + float(expires_in) if isinstance(expires_in, int | float) else None
        scope = body.get("scope")
        token_type = "DPoP" if kind.lower() == "dpop" else "Bearer"
        return Token(
            access, scope if isinstance(scope, str) else None, expires_at, body.get("issued_token_type"), token_type
        )

    async def _post(self, form: dict[str, str], headers: dict[str, str]) -> httpx2.Response:
        """One token request; with DPoP, with a fresh proof."""
        if self.dpop is not None:
            headers = {**headers, "DPoP": self.dpop.proof("POST", self.server.token_endpoint)}
        self.requests += 1
        try:
            return await self._http.post(self.server.token_endpoint, data=form, headers=headers)
        except httpx2.HTTPError as exc:
            raise TokenError("request_failed", type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> TokenSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
