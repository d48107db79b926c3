"""Billing fixtures: a real app on SQLite or PostgreSQL, an admin token, and the issue's sample month."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from authz.admin.bootstrap import admin_resource_uri, create_admin_client
from tests.authz.conftest import AS, ASFactory

SCOPES = "admin:read admin:write metering:write metering:read"
API = "/api/v1"


@dataclass
class Billed:
    srv: AS
    headers: dict[str, str]

    async def post(self, path: str, body: Any, status: int = 201, **kw: Any) -> Any:
        r = await self.srv.http.post(API + path, json=body, headers={**self.headers, **kw.pop("headers", {})}, **kw)
        assert r.status_code == status, r.text
        return r.json()

    async def get(self, path: str, status: int = 200, **kw: Any) -> Any:
        r = await self.srv.http.get(API + path, headers={**self.headers, **kw.pop("headers", {})}, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.headers.get("content-type", "").startswith("application/") else r.text

    def flush(self) -> None:
        assert self.srv.ctx.metering is not None
        self.srv.ctx.metering.flush()


async def admin_headers(srv: AS) -> dict[str, str]:
    reg = create_admin_client(srv.ctx.store, srv.ctx.keyring, srv.settings, name="billing", scopes=SCOPES.split())
    assert reg.client_secret
    r = await srv.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": admin_resource_uri(srv.settings), "scope": SCOPES},
        auth=(reg.client_id, reg.client_secret),
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def engines_to_dispose() -> Iterator[list[sa.Engine]]:
    engines: list[sa.Engine] = []
    yield engines
    for engine in engines:
        engine.dispose()


@pytest.fixture
async def billed(db_url: str, engines_to_dispose: list[sa.Engine], as_factory: ASFactory) -> Billed:
    """The app on each database. Set-up order: database, engine disposer, app; so tear-down stops the
    app, closes its connections, and only then drops the database."""
    srv = await as_factory(database_url=db_url, dev_mode=True)
    engines_to_dispose.append(srv.ctx.store.engine)  # type: ignore[attr-defined]
    return Billed(srv, await admin_headers(srv))


def month_start(now: float | None = None) -> datetime:
    dt = datetime.fromtimestamp(now or time.time(), UTC)
    return datetime(dt.year, dt.month, 1, tzinfo=UTC)


def sample_month(agents: list[str], customer: str | None, prefix: str) -> list[dict[str, Any]]:
    """3 agents at 3M, 8M, 12M tokens (as several events each) and 40 outcome.meeting_booked, now."""
    events: list[dict[str, Any]] = []
    for agent, millions in zip(agents, (3, 8, 12), strict=True):
        for half in range(2):
            events.append(
                {
                    "id": f"{prefix}-{agent}-t{half}",
                    "type": "tokens.consumed",
                    "agent": agent,
                    "timestamp": datetime.now(UTC).isoformat(),
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "workflow": "triage",
                    "usage": {"input_tokens": millions * 400_000, "output_tokens": millions * 100_000},
                }
            )
    for i in range(40):
        events.append(
            {
                "id": f"{prefix}-m{i}",
                "type": "outcome.meeting_booked",
                "agent": agents[i % 3],
                "timestamp": datetime.now(UTC).isoformat(),
                "metadata": {"qualified": True},
            }
        )
    if customer is not None:
        for e in events:
            e["customer"] = customer
    return events
