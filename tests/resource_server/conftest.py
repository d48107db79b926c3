from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from starlette.types import Message, Receive, Scope, Send

from resource_server import ResourceServerConfig, ResourceServerMiddleware, ScopePolicy, current_token
from tests.resource_server.fake_as import RS_CLIENT_ID, RS_CLIENT_SECRET, FakeAS

ISSUER = "http://as.test"
RESOURCE = "http://rs.test/mcp"

POLICY = ScopePolicy.build(
    default=["tools:read"],
    methods={"tools/list": ["tools:read"]},
    tools={"add": ["tools:read"], "write_note": ["tools:write"], "admin_reset": ["tools:admin"]},
    resources={"notes://secret": ["notes:read"]},
    implies={"tools:admin": ["tools:write"], "tools:write": ["tools:read"]},
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_as() -> FakeAS:
    return FakeAS(ISSUER, RESOURCE)


@dataclass
class EchoApp:
    """Downstream app: records what it received and echoes identity and body."""

    bodies: list[bytes] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        self.scopes.append(scope)
        token = current_token()
        payload = json.dumps({"sub": token.subject, "scopes": sorted(token.scopes)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


def config(**overrides: Any) -> ResourceServerConfig:
    values: dict[str, Any] = {
        "resource": RESOURCE,
        "issuer": ISSUER,
        "client_id": RS_CLIENT_ID,
        "client_secret": RS_CLIENT_SECRET,
        "mode": "jwt",
        "scope_policy": POLICY,
        "resource_name": "test server",
    }
    values.update(overrides)
    return ResourceServerConfig(**values)


def as_client(fake_as: FakeAS) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake_as.app))


@dataclass
class Harness:
    rs: ResourceServerMiddleware
    app: Any
    client: httpx2.AsyncClient

    async def call(self, token: str | None, body: Any = None, **kwargs: Any) -> httpx2.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        if body is None:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {}}}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
        return await self.client.post("/mcp", content=content, headers=headers, **kwargs)


@pytest.fixture
async def make_harness(fake_as: FakeAS) -> AsyncIterator[Any]:
    opened: list[httpx2.AsyncClient] = []

    def make(app: Any = None, *, hook: Any = None, http: httpx2.AsyncClient | None = None, **overrides: Any) -> Harness:
        downstream = app if app is not None else EchoApp()
        http_client = http if http is not None else as_client(fake_as)
        rs = ResourceServerMiddleware(downstream, config(**overrides), hook=hook, http_client=http_client)
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=rs), base_url="http://rs.test")
        opened.extend([client, http_client])
        return Harness(rs, downstream, client)

    yield make
    for client in opened:
        await client.aclose()
