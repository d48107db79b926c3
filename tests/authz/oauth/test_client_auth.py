"""private_key_jwt client authentication (RFC 7523 §2.2/§3): signatures, claims, replay, algorithms."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from authz.app import create_app
from tests.authz.conftest import AS, ISSUER, RESOURCE, ASFactory

pytestmark = pytest.mark.anyio
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def _register(authz: AS, key: ECKey, client_id: str = "pkjwt-agent") -> str:
    authz.client(
        client_id=client_id,
        auth_method="private_key_jwt",
        grant_types=["client_credentials"],
        jwks={"keys": [key.as_dict(private=False)]},
    )
    return client_id


def assertion(key: Any, client_id: str, *, alg: str = "ES256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:9100",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": getattr(key, "kid", None) or "k"}, claims, key)


async def _token(authz: AS, client_assertion: str) -> Any:
    return await authz.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "resource": RESOURCE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
        },
    )


@pytest.mark.requirement("rfc7523:private-key-jwt")
async def test_private_key_jwt_authenticates(authz: AS, key: ECKey) -> None:
    cid = _register(authz, key)
    r = await _token(authz, assertion(key, cid))
    assert r.status_code == 200, r.text
    assert (await authz.introspect(r.json()["access_token"]))["client_id"] == cid


async def test_token_endpoint_url_is_an_accepted_audience(authz: AS, key: ECKey) -> None:
    cid = _register(authz, key)
    assert (await _token(authz, assertion(key, cid, aud="http://127.0.0.1:9100/token"))).status_code == 200


@pytest.mark.requirement("rfc7523:jti-replay")
async def test_replayed_assertion_is_refused(authz: AS, key: ECKey) -> None:
    cid = _register(authz, key)
    a = assertion(key, cid)
    assert (await _token(authz, a)).status_code == 200
    again = await _token(authz, a)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    authz.ctx.audit.flush()
    assert any(e.reason == "client_assertion_replay" for e in authz.ctx.store.list_audit(0, 1000))


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://someone-else.example"},
        {"exp": int(time.time()) - 3600},
        {"exp": int(time.time()) + 86400},  # lives too long
        {"jti": None},
        {"sub": "someone-else"},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_bad_claims_are_invalid_client(authz: AS, key: ECKey, overrides: dict[str, Any]) -> None:
    cid = _register(authz, key)
    r = await _token(authz, assertion(key, cid, **overrides))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_signature_by_another_key_is_invalid_client(authz: AS, key: ECKey) -> None:
    cid = _register(authz, key)
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    r = await _token(authz, assertion(stranger, cid))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.requirement("rfc7523:alg-allow-list")
async def test_hmac_and_none_algorithms_are_refused(authz: AS, key: ECKey) -> None:
    cid = _register(authz, key)
    hmac_key = OctKey.import_key(b"x" * 32)
    r = await _token(authz, assertion(hmac_key, cid, alg="HS256"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    head = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    body = assertion(key, cid).split(".")[1]
    r = await _token(authz, f"{head}.{body}.")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_garbage_assertion_is_invalid_client(authz: AS) -> None:
    r = await _token(authz, "not-a-jwt")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_secret_client_cannot_use_an_assertion(authz: AS, key: ECKey) -> None:
    reg = authz.machine_client()
    r = await _token(authz, assertion(key, reg.client_id))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_forged_signature_under_the_clients_kid_is_invalid_client(authz: AS, key: ECKey) -> None:
    """The ES256 shortcut (a ``kid`` of the client's) still refuses a signature by another key."""
    cid = _register(authz, key)
    stranger = ECKey.import_key({**ECKey.generate_key("P-256").as_dict(private=True), "kid": key.kid})
    r = await _token(authz, assertion(stranger, cid))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    head, payload, sig = assertion(key, cid).split(".")
    other_payload = assertion(key, cid, jti="another").split(".")[1]
    r = await _token(authz, f"{head}.{other_payload}.{sig}")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert payload != other_payload


async def test_assertion_with_other_header_fields_is_verified_too(authz: AS, key: ECKey) -> None:
    """An assertion outside the ES256 shortcut (another header field) is verified by joserfc, with the
    same claims checks and replay refusal."""
    cid = _register(authz, key)
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": "http://127.0.0.1:9100", "exp": now + 60, "jti": uuid.uuid4().hex}
    signed = jwt.encode({"alg": "ES256", "kid": key.kid, "cty": "client-assertion"}, claims, key)
    assert (await _token(authz, signed)).status_code == 200
    again = await _token(authz, signed)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


@pytest.mark.requirement("rfc7523:jti-replay")
async def test_two_replicas_share_the_redis_assertion_replay_cache(redis_url: str, as_factory: ASFactory) -> None:
    """With Redis, replica B (its own app and caches, the same database and Redis) refuses an assertion
    replica A accepted."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    a = await as_factory(redis_url=redis_url)
    cid = _register(a, key)
    app_b = create_app(a.settings)
    try:
        async with app_b.router.lifespan_context(app_b):
            transport = httpx2.ASGITransport(app=app_b)
            async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http_b:
                signed = assertion(key, cid)
                assert (await _token(a, signed)).status_code == 200
                data = {"grant_type": "client_credentials", "resource": RESOURCE,
                        "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}  # fmt: skip
                replayed = await http_b.post("/token", data=data)
                assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
                data["client_assertion"] = assertion(key, cid)
                assert (await http_b.post("/token", data=data)).status_code == 200
    finally:
        app_b.state.ctx.store.engine.dispose()
