"""Authorization server fixtures: a real app on a real (SQLite or PostgreSQL) database, in process.

``as_factory`` builds an app from settings overrides; ``authz`` is the common case: development
mode off, one registered MCP server (``RESOURCE``), and helpers to register clients and run flows.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette

from authz.app import create_app
from authz.context import Context
from authz.core.settings import Settings
from authz.identity.registry import Registered, register_client, register_resource
from authz.identity.users import create_user

ISSUER = "http://127.0.0.1:9100"
RESOURCE = "http://127.0.0.1:9200/mcp"
OTHER_RESOURCE = "http://127.0.0.1:9300/mcp"
REDIRECT = "http://127.0.0.1:3999/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class AS:
    """A running authorization server app and a client talking to it through ASGI."""

    app: Starlette
    http: httpx2.AsyncClient
    rs: Registered  # introspection credentials of RESOURCE
    other_rs: Registered
    settings: Settings
    users: dict[str, Any] = field(default_factory=dict)

    @property
    def ctx(self) -> Context:
        ctx: Context = self.app.state.ctx
        return ctx

    def client(self, **kwargs: Any) -> Registered:
        return register_client(self.ctx.store, self.ctx.keyring, **kwargs)

    def public_client(self, client_id: str = "public-app", **kwargs: Any) -> Registered:
        kwargs.setdefault("redirect_uris", [REDIRECT])
        return self.client(client_id=client_id, auth_method="none", name="Public App", **kwargs)

    def machine_client(self, client_id: str = "agent-1", **kwargs: Any) -> Registered:
        kwargs.setdefault("grant_types", ["client_credentials"])
        return self.client(client_id=client_id, name="Agent", **kwargs)

    async def client_credentials(self, reg: Registered, **form: str) -> httpx2.Response:
        data = {"grant_type": "client_credentials", "resource": RESOURCE, **form}
        assert reg.client_secret is not None
        return await self.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret))

    async def introspect(self, token: str, rs: Registered | None = None) -> dict[str, Any]:
        rs = rs or self.rs
        assert rs.client_secret is not None
        r = await self.http.post("/introspect", data={"token": token}, auth=(rs.client_id, rs.client_secret))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def authorize(self, client_id: str, **params: str) -> httpx2.Response:
        """GET /authorize with sensible defaults (PKCE challenge must be passed by the caller)."""
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "state": "st-1",
            "resource": RESOURCE,
            **params,
        }
        return await self.http.get("/authorize", params={k: v for k, v in query.items() if v is not None})

    async def code_flow(self, client_id: str, scope: str | None = None) -> tuple[dict[str, Any], str]:
        """A full authorization code flow for a public client in development mode; returns (token body, verifier)."""
        verifier, challenge = pkce_pair()
        params = {"code_challenge": challenge, "code_challenge_method": "S256"}
        if scope is not None:
            params["scope"] = scope
        r = await self.authorize(client_id, **params)
        assert r.status_code == 302, r.text
        q = redirect_params(r)
        assert "code" in q, q
        t = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": q["code"],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": client_id,
                "resource": RESOURCE,
            },
        )
        assert t.status_code == 200, t.text
        body: dict[str, Any] = t.json()
        return body, q["code"]


def redirect_params(response: httpx2.Response) -> dict[str, str]:
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


ASFactory = Callable[..., Awaitable[AS]]


@pytest.fixture
async def as_factory(tmp_path: Path, sqlite_url: str) -> AsyncIterator[ASFactory]:
    stack: list[Any] = []

    async def make(database_url: str | None = None, **overrides: Any) -> AS:
        values: dict[str, Any] = {
            "issuer": ISSUER,
            "data_dir": tmp_path,
            "database_url": database_url or sqlite_url,
            "cache_staleness": 0.05,
            **overrides,
        }
        settings = Settings(**values)
        app = create_app(settings)
        stack.append(app.state.ctx.store.engine)  # disposed last: no connection outlives the test
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=settings.issuer)
        stack.append(http)
        ctx: Context = app.state.ctx
        rs = register_resource(ctx.store, ctx.store, ctx.keyring, RESOURCE, ["tools:read", "tools:write"], "demo")
        other_scopes = ["tools:read", "files:read"]
        other = register_resource(ctx.store, ctx.store, ctx.keyring, OTHER_RESOURCE, other_scopes, "other")
        server = AS(app=app, http=http, rs=rs, other_rs=other, settings=settings)
        server.users["alice"] = create_user(ctx.store, "alice", "correct horse battery")
        return server

    yield make
    for item in reversed(stack):
        if isinstance(item, httpx2.AsyncClient):
            await item.aclose()
        elif isinstance(item, Engine):
            item.dispose()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
async def authz(as_factory: ASFactory) -> AS:
    """The authorization server with development mode on (auto sign-in of ``demo``, auto consent)."""
    return await as_factory(dev_mode=True)


@pytest.fixture
async def authz_strict(as_factory: ASFactory) -> AS:
    """The authorization server without development mode: real sign-in and consent pages."""
    return await as_factory(dev_mode=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
