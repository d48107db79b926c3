"""Shared helpers of the governance tests: audit records by event, an agent, admin headers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from authz.admin.bootstrap import admin_resource_uri, create_admin_client
from authz.identity.agents import lifecycle as lc
from authz.storage.models import AuditEvent
from tests.authz.conftest import AS


def audit_events(authz: AS, prefix: str) -> list[dict[str, Any]]:
    authz.ctx.audit.flush()
    with authz.ctx.store.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(AuditEvent).where(AuditEvent.event.like(prefix + "%")).order_by(AuditEvent.seq))
        return [dict(r._mapping) for r in rows]


def new_agent(authz: AS, name: str = "helper") -> str:
    return lc.create_agent(lc.Agents.from_context(authz.ctx), name=name, actor="test").id


async def admin_headers(authz: AS, scopes: str = "admin:read admin:write", name: str = "ops") -> dict[str, str]:
    reg = create_admin_client(authz.ctx.store, authz.ctx.keyring, authz.settings, name=name, scopes=scopes.split())
    assert reg.client_secret
    r = await authz.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": admin_resource_uri(authz.settings), "scope": scopes},
        auth=(reg.client_id, reg.client_secret),
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
