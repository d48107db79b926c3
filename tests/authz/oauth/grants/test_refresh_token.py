"""Refresh token rotation, reuse detection and scope narrowing (OAuth 2.1 §4.3)."""

from __future__ import annotations

import pytest

from tests.authz.conftest import AS, RESOURCE

pytestmark = pytest.mark.anyio


async def _refresh(authz: AS, token: str, **extra: str):  # type: ignore[no-untyped-def]
    return await authz.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "public-app", **extra}
    )


@pytest.mark.requirement("oauth21:refresh-rotation")
@pytest.mark.requirement("mcp:refresh-rotation-public")
async def test_refresh_rotates_and_keeps_subject_and_resource(authz: AS) -> None:
    authz.public_client()
    first, _ = await authz.code_flow("public-app")
    r = await _refresh(authz, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    a, b = await authz.introspect(first["access_token"]), await authz.introspect(second["access_token"])
    assert a["sub"] == b["sub"] and b["aud"] == RESOURCE and b["sid"] == a["sid"]


@pytest.mark.requirement("oauth21:refresh-reuse-revokes-family")
async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(authz: AS) -> None:
    authz.public_client()
    first, _ = await authz.code_flow("public-app")
    second = (await _refresh(authz, first["refresh_token"])).json()
    reuse = await _refresh(authz, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert (await _refresh(authz, second["refresh_token"])).status_code == 400
    assert (await authz.introspect(second["access_token"]))["active"] is False
    assert (await authz.introspect(first["access_token"]))["active"] is False
    authz.ctx.audit.flush()
    assert any(e.event == "refresh.reused" for e in authz.ctx.store.list_audit(0, 1000))


async def test_scope_can_shrink_but_never_grow(authz: AS) -> None:
    authz.public_client()
    first, _ = await authz.code_flow("public-app", scope="tools:read")
    grow = await _refresh(authz, first["refresh_token"], scope="tools:read tools:write")
    assert grow.status_code == 400 and grow.json()["error"] == "invalid_scope"
    # the failed attempt spent the token: rotation means one use, whatever the outcome
    again, _ = await authz.code_flow("public-app", scope="tools:read tools:write")
    shrink = await _refresh(authz, again["refresh_token"], scope="tools:read")
    assert shrink.status_code == 200 and shrink.json()["scope"] == "tools:read"


async def test_refresh_for_another_resource_is_invalid_target(authz: AS) -> None:
    authz.public_client()
    first, _ = await authz.code_flow("public-app")
    r = await _refresh(authz, first["refresh_token"], resource="http://127.0.0.1:9300/mcp")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


@pytest.mark.requirement("rfc6749:refresh-bound-to-client")
async def test_refresh_token_of_another_client_is_invalid_grant(authz: AS) -> None:
    authz.public_client()
    authz.public_client("other-app")
    first, _ = await authz.code_flow("public-app")
    r = await authz.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "other-app"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_unknown_refresh_token_is_invalid_grant(authz: AS) -> None:
    authz.public_client()
    r = await _refresh(authz, "not-a-token")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
