"""The budgets admin routes, mounted on a real app the way the lead will mount them."""

from __future__ import annotations

import pytest
from starlette.routing import Mount

from authz.admin import budgets
from authz.admin.api import route
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import ASFactory

pytestmark = pytest.mark.anyio


async def test_create_list_status_update_delete(as_factory: ASFactory) -> None:
    srv = await as_factory()
    mount = next(r for r in srv.app.router.routes if isinstance(r, Mount) and r.path == "/api/v1")
    mount.routes.extend(route(op) for op in budgets.OPERATIONS)  # what adding them to admin OPERATIONS does
    headers = {"Authorization": f"Bearer {await admin_token(srv)}"}
    r = await srv.http.post("/api/v1/agents", json={"name": "bot"}, headers=headers)
    assert r.status_code == 201, r.text
    agent_id = r.json()["id"]

    r = await srv.http.post(
        f"/api/v1/agents/{agent_id}/budgets",
        json={"period": "month", "token_limit": 5000000, "hard_cap": True, "webhooks": [{"url": "https://x.test/h"}]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metric"] == "tokens" and created["limit"] == 5000000 and created["hard_cap"] is True
    assert created["created_webhooks"][0]["secret"].startswith("whsec_")
    assert created["status"]["remaining"] == 5000000 and created["status"]["period_end"]
    bid = created["id"]

    r = await srv.http.get(f"/api/v1/agents/{agent_id}/budgets", headers=headers)
    assert r.status_code == 200 and [b["id"] for b in r.json()["items"]] == [bid]
    assert "secret" not in r.text

    r = await srv.http.patch(f"/api/v1/budgets/{bid}", json={"limit": 10, "hard_cap": False}, headers=headers)
    assert r.status_code == 200 and r.json()["limit"] == 10 and r.json()["hard_cap"] is False
    r = await srv.http.get(f"/api/v1/budgets/{bid}/status", headers=headers)
    assert r.status_code == 200 and r.json()["spent"] == 0

    r = await srv.http.post("/api/v1/agents/nope/budgets", json={"call_limit": 1}, headers=headers)
    assert r.status_code == 404
    r = await srv.http.post(
        f"/api/v1/agents/{agent_id}/budgets", json={"call_limit": 1, "token_limit": 1}, headers=headers
    )
    assert r.status_code == 422
    r = await srv.http.post(
        "/api/v1/workflows/wf-1/budgets", json={"cost_limit_micros": 5, "currency": "usd"}, headers=headers
    )
    assert r.status_code == 422  # currency must be an ISO code
    r = await srv.http.delete(f"/api/v1/budgets/{bid}", headers=headers)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert (await srv.http.get(f"/api/v1/budgets/{bid}", headers=headers)).status_code == 404
