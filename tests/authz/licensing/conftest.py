"""Licensing fixtures: the server on SQLite and PostgreSQL, an admin, a settable clock, and helpers
that create a product, a policy and a license through the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from agent_client.licenses import verify_response
from authz.licensing.service import Licensing
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS
from tests.authz.identity.agents.conftest import agents_db_url, engines_to_dispose, server

__all__ = ["agents_db_url", "engines_to_dispose", "server"]
API = "/api/v1"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Lic:
    srv: AS
    admin: dict[str, str]
    clock: Clock

    @property
    def svc(self) -> Licensing:
        assert self.srv.ctx.licensing is not None
        return self.srv.ctx.licensing

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx2.Response:
        return await self.srv.http.post(API + path, json=body, **kw)

    async def admin_post(self, path: str, body: Any = None) -> httpx2.Response:
        return await self.srv.http.post(API + path, json=body, headers=self.admin)

    async def product(self, code: str = "app") -> dict[str, Any]:
        r = await self.admin_post("/products", {"code": code, "name": code.title()})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def policy(self, product: str = "app", **rules: Any) -> dict[str, Any]:
        r = await self.admin_post("/license-policies", {"product": product, "name": "standard", **rules})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def license(self, policy_id: str, **fields: Any) -> tuple[dict[str, Any], str]:
        r = await self.admin_post("/licenses", {"policy": policy_id, **fields})
        assert r.status_code == 201, r.text
        body = dict(r.json())
        return body, str(body.pop("key"))

    async def setup(self, *, entitlements: tuple[str, ...] = ("pro",), **rules: Any) -> tuple[dict[str, Any], str]:
        await self.product()
        pol = await self.policy(entitlements=list(entitlements), **rules)
        return await self.license(pol["id"])

    async def jwks(self) -> dict[str, Any]:
        r = await self.srv.http.get(API + "/licenses/jwks")
        assert r.status_code == 200
        return dict(r.json())

    async def validate(self, key: str, nonce: str = "n-1", **scope: Any) -> dict[str, Any]:
        r = await self.post("/licenses/actions/validate-key", {"key": key, "nonce": nonce, "scope": scope})
        assert r.status_code == 200, r.text
        return verify_response(r.content, r.headers.get("authz-signature"), await self.jwks(), nonce=nonce,
                               clock=self.clock)  # fmt: skip

    async def activate(self, key: str, fingerprint: str, **kw: Any) -> httpx2.Response:
        return await self.post("/machines/actions/activate", {"fingerprint": fingerprint, **kw},
                               headers={"Authorization": f"License {key}"})  # fmt: skip

    async def heartbeat(self, key: str, machine_id: str) -> httpx2.Response:
        return await self.post(f"/machines/{machine_id}/actions/heartbeat", None,
                               headers={"Authorization": f"License {key}"})  # fmt: skip


@pytest.fixture
async def lic(server: AS) -> Lic:
    clock = Clock(1_900_000_000.0)
    assert server.ctx.licensing is not None
    server.ctx.licensing.clock = clock
    return Lic(server, {"Authorization": f"Bearer {await admin_token(server)}"}, clock)
