"""Admin API fixtures: the server on each database, and bearer tokens for the admin resource."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from authz.admin.bootstrap import admin_resource_uri, create_admin_client
from tests.authz.conftest import AS
from tests.authz.identity.agents.conftest import agents_db_url, engines_to_dispose, server

__all__ = ["agents_db_url", "engines_to_dispose", "server"]

TokenFor = Callable[..., Awaitable[str]]


async def admin_token(srv: AS, scopes: str = "admin:read admin:write", name: str = "ops") -> str:
    reg = create_admin_client(srv.ctx.store, srv.ctx.keyring, srv.settings, name=name, scopes=scopes.split())
    assert reg.client_secret
    r = await srv.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": admin_resource_uri(srv.settings), "scope": scopes},
        auth=(reg.client_id, reg.client_secret),
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.fixture
async def admin(server: AS) -> tuple[AS, dict[str, str]]:
    """The server and the headers of a full admin (admin:read admin:write)."""
    return server, {"Authorization": f"Bearer {await admin_token(server)}"}
