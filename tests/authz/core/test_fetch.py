"""The SSRF-safe fetcher against a real HTTP server on loopback (uvicorn in a thread)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from authz.core import fetch, netguard
from authz.core.fetch import Fetcher, FetchError, cache_ttl


@dataclass
class Served:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False


class DocServer:
    """A real Starlette app on uvicorn, 127.0.0.1:<free port>, serving what a test puts in ``docs``."""

    def __init__(self) -> None:
        self.docs: dict[str, Served] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._serve)])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", http="h11",
                                timeout_graceful_shutdown=1)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put_json(self, path: str, doc: Any, **kwargs: Any) -> str:
        self.docs[path] = Served(json.dumps(doc).encode(), **kwargs)
        return self.url(path)

    def count(self, path: str) -> int:
        return self.hits.get(path, 0)

    async def _serve(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] = self.hits.get(path, 0) + 1
        served = self.docs.get(path)
        if served is None:
            return Response("not here", 404)
        if served.delay:
            deadline = time.monotonic() + served.delay
            while not self.release.is_set() and time.monotonic() < deadline:
                await anyio.sleep(0.02)
        if served.chunked:

            async def chunks() -> Any:
                for i in range(0, len(served.body), 1024):
                    yield served.body[i : i + 1024]

            return StreamingResponse(chunks(), served.status, served.headers, media_type="application/json")
        return Response(served.body, served.status, served.headers, media_type="application/json")

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "document server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.release.set()
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def docserver() -> Iterator[DocServer]:
    server = DocServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(allow_loopback=True, timeout=2.0)
    yield f
    f.close()


pytestmark = pytest.mark.anyio


# -- address and URL policy: refused before any traffic ---------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/doc", "https://10.0.0.1/doc", "https://192.168.1.1/doc", "https://169.254.169.254/latest",
        "https://[::1]/doc", "https://[fe80::1]/doc", "https://[::ffff:10.0.0.1]/doc", "https://0.0.0.0/doc",
        "https://224.0.0.1/doc", "https://100.64.0.1/doc", "https://localhost/doc",
    ],
)  # fmt: skip
async def test_special_use_addresses_are_refused(url: str) -> None:
    with pytest.raises(FetchError) as info:
        await fetch.fetch_json(url)
    assert info.value.reason == "forbidden_address"


@pytest.mark.parametrize(
    "url", ["http://example.com/doc", "ftp://example.com/doc", "https://user:pw@example.com/doc", "file:///etc/passwd"]
)
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError) as info:
        await fetch.fetch_json(url)
    assert info.value.reason == "bad_url"


async def test_loopback_refused_without_a_connection() -> None:
    """Loopback not allowed: the address check refuses; the listening socket never sees a connection."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        for url in (f"https://127.0.0.1:{port}/doc", f"http://127.0.0.1:{port}/doc"):
            with pytest.raises(FetchError):
                await fetch.fetch_json(url)
            with pytest.raises(FetchError):
                fetch.fetch_json_sync(url)
        await anyio.sleep(0.05)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


async def test_resolver_hook_checks_resolved_addresses() -> None:
    """A *name* that resolves to loopback is refused at connect time (the rebinding-safe check)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        with pytest.raises(FetchError) as info:
            await netguard._GuardedAsyncBackend(allow_loopback=False).connect_tcp("localhost", port)
        assert info.value.reason == "forbidden_address"
        with pytest.raises(FetchError):
            netguard._GuardedSyncBackend(allow_loopback=False).connect_tcp("localhost", port)
        with pytest.raises(BlockingIOError):
            listener.accept()
        stream = netguard._GuardedSyncBackend(allow_loopback=True).connect_tcp("localhost", port)
        stream.close()
    finally:
        listener.close()


# -- responses --------------------------------------------------------------------------------
async def test_fetches_a_json_object_async_and_sync(docserver: DocServer, fetcher: Fetcher) -> None:
    url = docserver.put_json("/doc.json", {"a": 1}, headers={"Cache-Control": "max-age=600"})
    got = await fetcher.fetch(url)
    assert got.data == {"a": 1} and got.ttl == 600
    got = fetcher.fetch_sync(url)
    assert got.data == {"a": 1} and got.expires_at >= int(time.time()) + 590
    assert docserver.count("/doc.json") == 2
    await fetcher.aclose()


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (Served(b"", 302, {"Location": "http://127.0.0.1:1/x"}), "redirect"),
        (Served(b'{"a": 1}', 404), "http_status"),
        (Served(b"<html>secret-body</html>"), "not_json"),
        (Served(b"[1, 2]"), "not_object"),
        (Served(b"[" * 15_000), "too_deep"),  # 15 KB: json.loads alone raises RecursionError
        (Served(b'{"keys": ' + b"[" * 40 + b"]" * 40 + b"}"), "too_deep"),
        (Served(b'{"pad": "' + b"x" * 70_000 + b'"}'), "too_large"),
        (Served(b'{"pad": "' + b"x" * 70_000 + b'"}', chunked=True), "too_large"),
    ],
)
async def test_refused_responses(docserver: DocServer, fetcher: Fetcher, served: Served, reason: str) -> None:
    docserver.docs["/x"] = served
    for attempt in (fetcher.fetch, fetcher.fetch_sync):
        with pytest.raises(FetchError) as info:
            result = attempt(docserver.url("/x"))
            if not isinstance(result, fetch.Fetched):
                await result
        assert info.value.reason == reason
        assert "secret-body" not in str(info.value)
    await fetcher.aclose()


async def test_slow_server_times_out(docserver: DocServer) -> None:
    docserver.docs["/slow"] = Served(b"{}", delay=5)
    slow = Fetcher(allow_loopback=True, timeout=0.3)
    with pytest.raises(FetchError) as info:
        await slow.fetch(docserver.url("/slow"))
    assert info.value.reason == "timeout"
    with pytest.raises(FetchError) as info:
        slow.fetch_sync(docserver.url("/slow"))
    assert info.value.reason == "timeout"
    await slow.aclose()
    slow.close()


# -- cache lifetimes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        ({}, fetch.DEFAULT_TTL),
        ({"cache-control": "max-age=600"}, 600),
        ({"cache-control": "public, max-age=600", "age": "100"}, 500),
        ({"cache-control": "max-age=5"}, fetch.MIN_TTL),
        ({"cache-control": "max-age=999999999"}, fetch.MAX_TTL),
        ({"cache-control": "no-store"}, fetch.MIN_TTL),
        ({"cache-control": "no-cache, max-age=600"}, fetch.MIN_TTL),
        ({"cache-control": "max-age=nonsense"}, fetch.MIN_TTL),
        ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, fetch.MIN_TTL),
        ({"expires": "garbage"}, fetch.MIN_TTL),
        ({"date": "Mon, 01 Jan 2024 00:00:00 GMT", "expires": "Mon, 01 Jan 2024 01:00:00 GMT"}, 3600),
        ({"cache-control": "max-age=120", "expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, 120),
    ],
)
def test_cache_ttl(headers: dict[str, str], ttl: int) -> None:
    assert cache_ttl(httpx2.Headers(headers)) == ttl
