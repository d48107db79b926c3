"""``DpopAuth``: an httpx2 auth that presents a token source's DPoP-bound token with a fresh proof (RFC 9449 §7.1)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx2

from agent_client.dpop import DpopSession, is_nonce_challenge
from agent_client.token_source import TokenSource

__all__ = ["DpopAuth"]


class DpopAuth(httpx2.Auth):
    """Presents the source's token with the DPoP scheme and a fresh proof on every request.

    A token the server issued as ``Bearer`` (it does not do DPoP) is sent as ``Bearer``. A nonce
    challenge is answered once with a new proof; another 401 drops the token and retries once.
    """

    requires_request_body = True  # the body is replayed on a retry

    def __init__(self, source: TokenSource) -> None:
        if source.dpop is None:
            raise ValueError("DpopAuth needs a TokenSource built with dpop=DpopSession(...)")
        self.source = source
        self.session: DpopSession = source.dpop

    async def _sign(self, request: httpx2.Request) -> str:
        token = await self.source.current()
        if token.token_type.lower() == "dpop":
            request.headers["Authorization"] = f"DPoP {token.access_token}"
            request.headers["DPoP"] = self.session.proof(request.method, str(request.url), token.access_token)
        else:
            request.headers["Authorization"] = f"Bearer {token.access_token}"
            request.headers.pop("DPoP", None)
        return token.access_token

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await request.aread()
        url = str(request.url)
        access = await self._sign(request)
        response = yield request
        self.session.remember(url, response)
        if response.status_code == 401 and is_nonce_challenge(response):
            await response.aread()
            await self._sign(request)
            response = yield request
            self.session.remember(url, response)
        if response.status_code != 401:
            return
        self.source.invalidate(access)
        await response.aread()
        await self._sign(request)
        response = yield request
        self.session.remember(url, response)

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise RuntimeError("DpopAuth needs an httpx2.AsyncClient (the token source is asynchronous)")
        yield request  # pragma: no cover - makes this a generator
