"""``BearerAuth``: an ``httpx2.Auth`` that sends the source's token and retries once on 401.

RFC 6750 §2.1: ``Authorization: Bearer <token>`` on every request (MCP: never in the query). A 401
(RFC 6750 §3.1 ``invalid_token``: expired, revoked, the agent suspended...) drops the cached token
and the request is sent once more with a new one; a second 401 is returned to the caller.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx2

from agent_client.token_source import TokenSource


class BearerAuth(httpx2.Auth):
    requires_request_body = True  # the body is replayed on the retry

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self.requires_request_body:
            await request.aread()
        token = await self.source.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        self.source.invalidate(token)
        await response.aread()
        request.headers["Authorization"] = f"Bearer {await self.source.token()}"
        yield request

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise RuntimeError("BearerAuth needs an httpx2.AsyncClient (the token source is asynchronous)")
        yield request  # pragma: no cover - makes this a generator
