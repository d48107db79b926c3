"""The token-injecting proxy in front of the demo MCP server: the official suite cannot send a bearer
token, so the proxy adds a fresh one (from the AS, refreshed before expiry) to every request it forwards."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from conformance.run_as_suite import RunnerError

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "authorization")
)
REFRESH_MARGIN = 60.0  # seconds before expiry at which the proxy fetches a new token


# -- the token source and the proxy ------------------------------------------------------------
class TokenSource:
    """client_credentials tokens from the AS, renewed ``REFRESH_MARGIN`` seconds before they expire."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, resource: str, scope: str) -> None:
        self._url = token_url
        self._auth = (client_id, client_secret)
        self._data = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0

    def fetch_sync(self) -> str:
        """One token now (checks the registration before the suite starts)."""
        response = httpx2.post(self._url, auth=self._auth, data=self._data, timeout=15)
        return self._accept(response)

    async def get(self, http: httpx2.AsyncClient) -> str:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._accept(await http.post(self._url, auth=self._auth, data=self._data))
            assert self._token is not None
            return self._token

    def _accept(self, response: httpx2.Response) -> str:
        if response.status_code != 200:
            raise RunnerError(f"token request failed: {response.status_code} {response.text[:300]}")
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 300)
        self._renew_at = time.monotonic() + max(1.0, lifetime - REFRESH_MARGIN)
        self.issued += 1
        return self._token


@dataclass
class ProxyStats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    challenges: int = 0  # 401/403 answers from the middleware: the token did not work


def build_proxy(upstream: str, tokens: TokenSource, stats: ProxyStats) -> Starlette:
    """A reverse proxy to ``upstream`` (scheme://host:port) that adds ``Authorization: Bearer``.

    The request body is forwarded as received, every header except hop-by-hop ones (and any
    client ``Authorization``) is kept, ``Host`` included (the SDK's DNS-rebinding protection sees
    what the client sent). The response is streamed back chunk by chunk as the upstream sends it.
    """
    clients: list[httpx2.AsyncClient] = []  # created inside the proxy's event loop (lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None), follow_redirects=False) as client:
            clients.append(client)
            yield

    async def forward(request: Request) -> Response:
        http = clients[0]
        token = await tokens.get(http)
        # RFC 9110 §5.5: OWS around a field value is not part of it (and h11 refuses to send it).
        headers = [(k, v.strip()) for k, v in request.headers.items() if k not in HOP_BY_HOP]
        headers.append(("authorization", f"Bearer {token}"))
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        upstream_request = http.build_request(request.method, url, headers=headers, content=await request.body())
        try:
            response = await http.send(upstream_request, stream=True)
        except httpx2.HTTPError as exc:
            return Response(f"proxy: upstream error {type(exc).__name__}", status_code=502)
        stats.requests += 1
        stats.by_status[response.status_code] = stats.by_status.get(response.status_code, 0) + 1
        if response.status_code in (401, 403) and "www-authenticate" in response.headers:
            stats.challenges += 1
        out_headers = {k: v for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP}

        async def body() -> AsyncIterator[bytes]:
            async for chunk in response.aiter_raw():
                yield chunk

        return StreamingResponse(
            body(), status_code=response.status_code, headers=out_headers, background=BackgroundTask(response.aclose)
        )

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]
    routes = [Route("/{path:path}", forward, methods=methods)]
    return Starlette(routes=routes, lifespan=lifespan)


class ProxyThread:
    """The proxy served by uvicorn in a background thread of this process."""

    def __init__(self, app: Starlette, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="token-proxy", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RunnerError("the token-injecting proxy did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
