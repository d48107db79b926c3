"""The body is read once and replayed unchanged; responses stream through unbuffered."""

import json

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from resource_server import ResourceServerMiddleware
from tests.resource_server.conftest import as_client, config
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio


async def test_body_is_replayed_byte_identical(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    # Odd spacing, key order and unicode: any re-serialisation would change these bytes.
    raw = '{ "id":7,"jsonrpc" : "2.0","method":"tools/call","params":{"name":"add","arguments":{"x":"\u00e9\\u00e9"}}}'
    body = raw.encode()
    r = await h.call(fake_as.mint(), body)
    assert r.status_code == 200
    assert h.app.bodies == [body]


async def test_chunked_body_is_reassembled_and_disconnect_still_reaches_the_app(fake_as: FakeAS) -> None:
    token = fake_as.mint()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add"}}).encode()
    incoming: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
        {"type": "http.disconnect"},
    ]
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return incoming.pop(0)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async with as_client(fake_as) as http:
        rs = ResourceServerMiddleware(app, config(), http_client=http)
        await rs(_scope(token), receive, send)
    assert seen == [{"type": "http.request", "body": body, "more_body": False}, {"type": "http.disconnect"}]
    assert sent[0]["status"] == 200


async def test_streaming_response_is_not_buffered(fake_as: FakeAS) -> None:
    """The app sends its second SSE event only after the client has seen the first one.

    A middleware that buffered the response would deadlock here (and time out).
    """
    token = fake_as.mint()
    first_seen = anyio.Event()

    async def sse_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await first_seen.wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: three\n\n", "more_body": False})

    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message["body"])
            first_seen.set()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async with as_client(fake_as) as http:
        rs = ResourceServerMiddleware(sse_app, config(), http_client=http)
        with anyio.fail_after(5):
            await rs(_scope(token), receive, send)
    assert chunks == [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]


async def test_oversized_body_is_refused(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(max_body_bytes=100)
    r = await h.call(fake_as.mint(), b"{" + b" " * 200 + b"}")
    assert r.status_code == 413
    assert h.app.bodies == []


def _scope(token: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"rs.test"), (b"authorization", f"Bearer {token}".encode())],
        "server": ("rs.test", 80),
        "client": ("127.0.0.1", 1234),
    }
