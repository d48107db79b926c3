"""The admin API as a DPoP protected resource (RFC 9449 §7.1, §7.2)."""

from __future__ import annotations

import pytest

from authz.admin.bootstrap import admin_resource_uri, create_admin_client
from dpop import DpopKey
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS, ISSUER

pytestmark = pytest.mark.anyio

TEAMS = "/api/v1/teams"


async def bound_admin_token(srv: AS, key: DpopKey) -> str:
    reg = create_admin_client(srv.ctx.store, srv.ctx.keyring, srv.settings, name="dpop-ops", scopes=["admin:read"])
    assert reg.client_secret
    r = await srv.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": admin_resource_uri(srv.settings), "scope": "admin:read"},
        auth=(reg.client_id, reg.client_secret),
        headers={"DPoP": key.proof("POST", ISSUER + "/token")},
    )
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
    token: str = r.json()["access_token"]
    return token


def dpop_headers(token: str, key: DpopKey, method: str = "GET", path: str = TEAMS) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": key.proof(method, ISSUER + path, access_token=token)}


def refused(r: object, error: str) -> None:
    assert r.status_code == 401, r.text  # type: ignore[attr-defined]
    challenge = r.headers["www-authenticate"]  # type: ignore[attr-defined]
    assert challenge.startswith("DPoP ") and f'error="{error}"' in challenge and "algs=" in challenge


@pytest.mark.requirement("rfc9449:rs-bearer-downgrade")
async def test_a_bound_token_sent_as_bearer_is_refused(server: AS) -> None:
    key = DpopKey.generate()
    token = await bound_admin_token(server, key)
    refused(await server.http.get(TEAMS, headers={"Authorization": f"Bearer {token}"}), "invalid_token")


@pytest.mark.requirement("rfc9449:rs-scheme")
async def test_a_bound_token_with_the_dpop_scheme_and_a_proof_is_accepted_once(server: AS) -> None:
    key = DpopKey.generate()
    token = await bound_admin_token(server, key)
    headers = dpop_headers(token, key)
    ok = await server.http.get(TEAMS, headers=headers)
    assert ok.status_code == 200, (ok.text, ok.headers.get("www-authenticate"))
    refused(await server.http.get(TEAMS, headers=headers), "invalid_dpop_proof")  # the same proof again
    assert (await server.http.get(TEAMS, headers=dpop_headers(token, key))).status_code == 200


@pytest.mark.requirement("rfc9449:rs-scheme")
async def test_proofs_that_do_not_fit_are_refused(server: AS) -> None:
    key = DpopKey.generate()
    token = await bound_admin_token(server, key)
    refused(await server.http.get(TEAMS, headers={"Authorization": f"DPoP {token}"}), "invalid_dpop_proof")
    other = dpop_headers(token, DpopKey.generate())
    refused(await server.http.get(TEAMS, headers=other), "invalid_token")  # bound to another key
    wrong_method = dpop_headers(token, key, method="POST")
    refused(await server.http.get(TEAMS, headers=wrong_method), "invalid_dpop_proof")
    wrong_uri = dpop_headers(token, key, path="/api/v1/agents")
    refused(await server.http.get(TEAMS, headers=wrong_uri), "invalid_dpop_proof")
    wrong_ath = {**dpop_headers(token, key), "DPoP": key.proof("GET", ISSUER + TEAMS, access_token=token + "x")}
    refused(await server.http.get(TEAMS, headers=wrong_ath), "invalid_dpop_proof")


async def test_an_unbound_token_stays_bearer_only(server: AS) -> None:
    token = await admin_token(server)
    assert (await server.http.get(TEAMS, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    key = DpopKey.generate()
    refused(await server.http.get(TEAMS, headers=dpop_headers(token, key)), "invalid_token")
