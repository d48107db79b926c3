"""RFC 7662 introspection: authenticated resource servers, their own audience only, revocation applied."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.authz.conftest import AS, OTHER_RESOURCE, RESOURCE

pytestmark = pytest.mark.anyio


async def _token(authz: AS, resource: str = RESOURCE) -> str:
    reg = authz.machine_client(client_id=f"agent-{resource[-8:-4]}")
    r = await authz.client_credentials(reg, resource=resource)
    token: str = r.json()["access_token"]
    return token


@pytest.mark.requirement("rfc7662:caller-authenticated")
async def test_unauthenticated_or_non_resource_callers_are_refused(authz: AS) -> None:
    token = await _token(authz)
    r = await authz.http.post("/introspect", data={"token": token})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    agent = authz.machine_client(client_id="nosy")
    assert agent.client_secret
    r = await authz.http.post("/introspect", data={"token": token}, auth=(agent.client_id, agent.client_secret))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_active_token_returns_its_claims(authz: AS) -> None:
    info = await authz.introspect(await _token(authz))
    assert info["active"] is True and info["token_type"] == "Bearer" and info["aud"] == RESOURCE
    assert {"sub", "client_id", "scope", "exp", "iat", "jti", "iss"} <= set(info)


@pytest.mark.requirement("rfc7662:other-audience-inactive")
async def test_a_token_for_another_resource_is_inactive_for_this_caller(authz: AS) -> None:
    token = await _token(authz, OTHER_RESOURCE)
    assert await authz.introspect(token) == {"active": False}
    assert (await authz.introspect(token, authz.other_rs))["active"] is True


@pytest.mark.requirement("rfc7662:inactive-token")
async def test_unknown_garbage_and_foreign_tokens_are_inactive(authz: AS) -> None:
    assert await authz.introspect("garbage") == {"active": False}
    key = ECKey.generate_key("P-256", auto_kid=True)
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": key.kid},
        {
            "iss": "http://127.0.0.1:9100",
            "aud": RESOURCE,
            "sub": "x",
            "client_id": "x",
            "iat": now,
            "exp": now + 60,
            "jti": "j",
        },
        key,
    )
    assert await authz.introspect(forged) == {"active": False}


async def test_expired_token_is_inactive(authz: AS) -> None:
    from authz.oauth.tokens import TokenRequest

    token, _ = authz.ctx.issuer.access_token(
        TokenRequest(client_id="agent-1", subject="agent-1", resource=RESOURCE, scope="", lifetime=30),
        now=int(time.time()) - 120,
    )
    authz.machine_client()
    assert await authz.introspect(token) == {"active": False}


async def test_tokens_of_a_disabled_client_are_inactive(authz: AS) -> None:
    token = await _token(authz)
    claims = await authz.introspect(token)
    authz.ctx.store.set_client_status(claims["client_id"], "disabled")
    authz.ctx.directory.invalidate("client", claims["client_id"])
    assert await authz.introspect(token) == {"active": False}


async def test_introspection_answers_are_not_cached(authz: AS) -> None:
    rs = authz.rs
    assert rs.client_secret
    r = await authz.http.post("/introspect", data={"token": "x"}, auth=(rs.client_id, rs.client_secret))
    assert r.headers["cache-control"] == "no-store"


async def test_missing_token_parameter_is_invalid_request(authz: AS) -> None:
    rs = authz.rs
    assert rs.client_secret
    r = await authz.http.post("/introspect", data={}, auth=(rs.client_id, rs.client_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
