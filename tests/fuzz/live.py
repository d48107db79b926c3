"""A real authorization server app, in process, driven from synchronous (hypothesis) tests.

Property-based tests call the app many times per test; building it per example would dominate the
run. :func:`live_server` builds it once per module on a migrated SQLite file, enters its lifespan on
an anyio blocking portal (one event loop for the lifespan and every request), and gives a
synchronous ``request()`` that sends through ``httpx2.ASGITransport`` on that loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import sqlalchemy as sa
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.applications import Starlette

import migrations
from authz.admin.bootstrap import ADMIN_SCOPES, admin_resource_uri, create_admin_client
from authz.app import create_app
from authz.context import Context
from authz.core.settings import Settings
from authz.identity.registry import Registered, register_client, register_resource
from authz.storage.models.base import Base

ISSUER = "http://127.0.0.1:9100"
RESOURCE = "http://127.0.0.1:9200/mcp"
REDIRECT = "http://127.0.0.1:3999/callback"


@dataclass
class Live:
    portal: BlockingPortal
    app: Starlette
    http: httpx2.AsyncClient
    settings: Settings
    rs: Registered  # introspection credentials for RESOURCE
    machine: Registered  # a client_credentials client
    public: Registered  # a public code-flow client
    admin_token: str

    @property
    def ctx(self) -> Context:
        ctx: Context = self.app.state.ctx
        return ctx

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        async def send() -> httpx2.Response:
            return await self.http.request(method, url, **kwargs)

        return self.portal.call(send)

    def rows(self) -> dict[str, int]:
        """Row count of every table: a refusal must leave all of them as they were."""
        self.ctx.audit.flush()
        engine: sa.Engine = self.ctx.store.engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables
            }


@contextmanager
def live_server(data_dir: Path, **overrides: Any) -> Iterator[Live]:
    url = f"sqlite:///{data_dir / 'authz.db'}"
    migrations.upgrade(url)
    settings = Settings(issuer=ISSUER, data_dir=data_dir, database_url=url, cache_staleness=0.05, **overrides)
    with start_blocking_portal() as portal:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ISSUER)
        try:
            ctx: Context = app.state.ctx
            rs = register_resource(ctx.store, ctx.store, ctx.keyring, RESOURCE, ["tools:read", "tools:write"], "demo")
            machine = register_client(
                ctx.store, ctx.keyring, client_id="agent-1", name="Agent", grant_types=["client_credentials"]
            )
            public = register_client(
                ctx.store, ctx.keyring, client_id="public-app", auth_method="none", name="App", redirect_uris=[REDIRECT]
            )
            admin = create_admin_client(ctx.store, ctx.keyring, settings, name="fuzz", scopes=list(ADMIN_SCOPES))
            assert admin.client_secret is not None
            form = {
                "grant_type": "client_credentials",
                "resource": admin_resource_uri(settings),
                "scope": " ".join(ADMIN_SCOPES),
            }

            async def token() -> httpx2.Response:
                return await http.post("/token", data=form, auth=(admin.client_id, admin.client_secret or ""))

            r = portal.call(token)
            assert r.status_code == 200, r.text
            yield Live(portal, app, http, settings, rs, machine, public, r.json()["access_token"])
        finally:
            portal.call(http.aclose)
            portal.call(lifespan.__aexit__, None, None, None)
