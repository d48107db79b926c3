"""``POST /api/v1/budgets/reserve`` and ``/settle`` (scope budgets:use), and ``BudgetHook`` against the real AS."""

from __future__ import annotations

import time

import httpx2
import pytest

from authz.admin.bootstrap import admin_resource_uri
from authz.budgets.model import Budget
from resource_server.budget import BudgetHook
from resource_server.context import TokenInfo
from resource_server.hooks import UseContext, UseOutcome
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS, ISSUER

pytestmark = pytest.mark.anyio


def _budget(server: AS, kind: str, subject: str, limit: int, metric: str = "calls") -> Budget:
    svc = server.ctx.budgets
    assert svc is not None
    budget, _ = svc.store.create(kind, subject, metric=metric, limit=limit, period="day", hard=True)
    svc.invalidate()
    return budget


async def test_reserve_settle_and_429(authz: AS) -> None:
    h = {"Authorization": f"Bearer {await admin_token(authz, 'budgets:use', 'rs')}"}
    b = _budget(authz, "agent", "agt_x", 2)
    body = {"agent": "agt_x", "request_id": "r1", "estimate": {"calls": 1}}
    r = await authz.http.post("/api/v1/budgets/reserve", json=body, headers=h)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["budgets"] == [b.id] and first["reservation_id"]
    again = await authz.http.post("/api/v1/budgets/reserve", json=body, headers=h)  # idempotent per request_id
    assert again.json()["budgets"] == [b.id]
    r = await authz.http.post("/api/v1/budgets/reserve", json={**body, "request_id": "r2"}, headers=h)
    assert r.status_code == 200
    r = await authz.http.post("/api/v1/budgets/reserve", json={**body, "request_id": "r3"}, headers=h)
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert 0 < int(r.headers["retry-after"]) <= 25 * 3600
    doc = r.json()
    assert doc["budget_id"] == b.id and doc["type"] == "urn:authz:problem:budget-exhausted" and doc["period_end"]

    settle = {"settlements": [{"reservation_id": first["reservation_id"], "actual": {"calls": 1}}]}
    r = await authz.http.post("/api/v1/budgets/settle", json=settle, headers=h)
    assert r.status_code == 200 and r.json()["results"][0]["state"] == "settled"
    r = await authz.http.post("/api/v1/budgets/settle", json=settle, headers=h)
    assert r.json()["results"][0]["state"] == "already"  # idempotent
    forged = {"settlements": [{"reservation_id": first["reservation_id"][:-4] + "AAAA"}]}
    r = await authz.http.post("/api/v1/budgets/settle", json=forged, headers=h)
    assert r.json()["results"][0]["state"] == "invalid"
    svc = authz.ctx.budgets
    assert svc is not None
    assert svc.status(b).spent == 1 and svc.status(b).reserved == 1

    r = await authz.http.post("/api/v1/budgets/reserve", json={"agent": "nobody"}, headers=h)
    assert r.status_code == 200 and r.json() == {
        "reservation_id": None,
        "budgets": [],
        "expires_at": None,
        "pending": False,
        "units": 1,
    }


async def test_a_lease_grants_what_fits_then_429(authz: AS) -> None:
    h = {"Authorization": f"Bearer {await admin_token(authz, 'budgets:use', 'rs')}"}
    b = _budget(authz, "agent", "agt_l", 5)
    body = {"agent": "agt_l", "estimate": {"calls": 1}, "units": 8, "ttl": 30}
    r = await authz.http.post("/api/v1/budgets/reserve", json=body, headers=h)
    assert r.status_code == 200 and r.json()["units"] == 5, r.text
    lease = r.json()["reservation_id"]
    r = await authz.http.post("/api/v1/budgets/reserve", json=body, headers=h)
    assert r.status_code == 429
    settle = {"settlements": [{"reservation_id": lease, "actual": {"calls": 3}}]}
    assert (await authz.http.post("/api/v1/budgets/settle", json=settle, headers=h)).status_code == 200
    svc = authz.ctx.budgets
    assert svc is not None
    assert (svc.status(b).spent, svc.status(b).reserved) == (3, 0)  # the two unused units are free again
    r = await authz.http.post("/api/v1/budgets/reserve", json=body, headers=h)
    assert r.json()["units"] == 2
    r = await authz.http.post("/api/v1/budgets/reserve", json={**body, "units": 10_001}, headers=h)
    assert r.status_code == 422


async def test_scope_is_required(authz: AS) -> None:
    h = {"Authorization": f"Bearer {await admin_token(authz)}"}  # admin:read admin:write, not budgets:use
    r = await authz.http.post("/api/v1/budgets/reserve", json={"agent": "a"}, headers=h)
    assert r.status_code == 403
    assert "budgets:use" in authz.ctx.directory.resource(admin_resource_uri(authz.settings)).scopes  # type: ignore[union-attr]


async def test_hook_against_the_real_as(authz: AS) -> None:
    from authz.admin.bootstrap import create_admin_client

    reg = create_admin_client(authz.ctx.store, authz.ctx.keyring, authz.settings, name="mcp", scopes=["budgets:use"])
    assert reg.client_secret
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=authz.app))
    hook = BudgetHook(ISSUER, reg.client_id, reg.client_secret, http_client=http, settle_delay=0)
    b = _budget(authz, "team", "team-1", 2)
    info = TokenInfo.from_claims({"sub": "u", "agent": "agt_1", "team": "team-1", "exp": time.time() + 60})

    def use() -> UseContext:
        return UseContext(token=info, calls=(), http_method="POST", path="/mcp", required_scopes=frozenset())

    ok = UseOutcome(status=200, duration=0.01)
    u1 = use()
    assert await hook.before(u1) is None
    await hook.after(u1, ok)
    u2 = use()
    assert await hook.before(u2) is None
    await hook.after(u2, UseOutcome(status=None, duration=0.0, error=RuntimeError()))  # released
    await hook.drain()
    svc = authz.ctx.budgets
    assert svc is not None
    assert (svc.status(b).spent, svc.status(b).reserved) == (1, 0)
    u3 = use()
    assert await hook.before(u3) is None
    await hook.after(u3, ok)
    await hook.drain()
    refused = await hook.before(use())
    assert refused is not None and refused.status == 429
    assert dict(refused.headers)["retry-after"].isdigit()
    assert b'"budget_id": "' + b.id.encode() in refused.body
    nobody = TokenInfo.from_claims({"sub": "u", "exp": time.time() + 60})
    assert await hook.before(UseContext(nobody, (), "POST", "/mcp", frozenset())) is None
    await hook.aclose()
    await http.aclose()


async def test_two_leasing_replicas_spend_a_hard_cap_exactly(authz: AS) -> None:
    """Two resource-server replicas leasing slices of one hard cap under concurrency: exactly the cap."""
    import asyncio

    from authz.admin.bootstrap import create_admin_client

    reg = create_admin_client(authz.ctx.store, authz.ctx.keyring, authz.settings, name="mcp2", scopes=["budgets:use"])
    assert reg.client_secret
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=authz.app))
    hooks = [
        BudgetHook(ISSUER, reg.client_id, reg.client_secret, http_client=http, settle_delay=0, lease_max=16)
        for _ in range(2)
    ]
    cap = 50
    b = _budget(authz, "agent", "agt_cap", cap)
    info = TokenInfo.from_claims({"sub": "u", "agent": "agt_cap", "exp": time.time() + 60})

    async def one(hook: BudgetHook) -> int:
        u = UseContext(token=info, calls=(), http_method="POST", path="/mcp", required_scopes=frozenset())
        refused = await hook.before(u)
        if refused is not None:
            return refused.status
        await asyncio.sleep(0.001)
        await hook.after(u, UseOutcome(status=200, duration=0.001))
        return 200

    statuses = await asyncio.gather(*(one(hooks[i % 2]) for i in range(4 * cap)))
    assert statuses.count(200) == cap and statuses.count(429) == 3 * cap
    for hook in hooks:
        await hook.drain()
    svc = authz.ctx.budgets
    assert svc is not None
    assert (svc.status(b).spent, svc.status(b).reserved) == (cap, 0)
    for hook in hooks:
        await hook.aclose()
    await http.aclose()
