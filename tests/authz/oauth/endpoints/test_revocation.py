"""RFC 7009 revocation."""

from __future__ import annotations

import pytest

from tests.authz.conftest import AS

pytestmark = pytest.mark.anyio


@pytest.mark.requirement("rfc7009:revoke-access-token")
async def test_a_client_revokes_its_access_token(authz: AS) -> None:
    reg = authz.machine_client()
    token = (await authz.client_credentials(reg)).json()["access_token"]
    assert reg.client_secret
    r = await authz.http.post("/revoke", data={"token": token}, auth=(reg.client_id, reg.client_secret))
    assert r.status_code == 200
    assert await authz.introspect(token) == {"active": False}


@pytest.mark.requirement("rfc7009:refresh-revokes-grant")
async def test_revoking_a_refresh_token_revokes_its_family(authz: AS) -> None:
    authz.public_client()
    tokens, _ = await authz.code_flow("public-app")
    r = await authz.http.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": "public-app"},
    )
    assert r.status_code == 200
    assert await authz.introspect(tokens["access_token"]) == {"active": False}
    again = await authz.http.post(
        "/token",
        data={"grant_type": "refresh_token", "client_id": "public-app", "refresh_token": tokens["refresh_token"]},
    )
    assert again.status_code == 400


@pytest.mark.requirement("rfc7009:unknown-token-200")
async def test_unknown_tokens_get_200_and_change_nothing(authz: AS) -> None:
    authz.public_client()
    r = await authz.http.post("/revoke", data={"token": "nonsense", "client_id": "public-app"})
    assert r.status_code == 200


@pytest.mark.requirement("rfc7009:token-owner-checked")
async def test_another_clients_token_is_not_revoked(authz: AS) -> None:
    owner = authz.machine_client()
    token = (await authz.client_credentials(owner)).json()["access_token"]
    authz.public_client()
    r = await authz.http.post("/revoke", data={"token": token, "client_id": "public-app"})
    assert r.status_code == 200
    assert (await authz.introspect(token))["active"] is True


async def test_bad_client_credentials_are_refused(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.http.post("/revoke", data={"token": "x"}, auth=(reg.client_id, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
