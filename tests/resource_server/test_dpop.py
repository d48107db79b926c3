"""DPoP at the resource server (RFC 9449 §4.3, §7, §9; RFC 9728 §2), in jwt and introspection modes."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest

from dpop import DpopKey
from resource_server.dpop import MemoryReplayCache
from tests.resource_server.conftest import RESOURCE
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio

URL = RESOURCE  # http://rs.test/mcp
MODES = ["jwt", "introspection", "hybrid"]


async def dpop_call(h: Any, token: str, proof: str | None, **kwargs: Any) -> httpx2.Response:
    headers = {"authorization": f"DPoP {token}", **kwargs.pop("headers", {})}
    if proof is not None:
        headers["dpop"] = proof
    return await h.call(None, headers=headers, **kwargs)


def bound(fake_as: FakeAS, key: DpopKey, **claims: Any) -> str:
    return fake_as.mint(cnf={"jkt": key.jkt}, **claims)


def www(r: httpx2.Response) -> list[str]:
    return r.headers.get_list("www-authenticate")


@pytest.mark.requirement("rfc9449:rs-scheme")
@pytest.mark.parametrize("mode", MODES)
async def test_a_bound_token_with_a_fresh_proof_is_accepted(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    key = DpopKey.generate()
    token = bound(fake_as, key)
    r = await dpop_call(h, token, key.proof("POST", URL, access_token=token))
    assert r.status_code == 200, r.text
    r2 = await dpop_call(h, token, key.proof("POST", URL, access_token=token))
    assert r2.status_code == 200, r2.text  # a new proof per request


@pytest.mark.requirement("rfc9449:jti-replay")
@pytest.mark.parametrize("mode", MODES)
async def test_a_replayed_proof_is_refused(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    key = DpopKey.generate()
    token = bound(fake_as, key)
    proof = key.proof("POST", URL, access_token=token)
    assert (await dpop_call(h, token, proof)).status_code == 200
    r = await dpop_call(h, token, proof)
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof"
    assert www(r)[0].startswith('DPoP error="invalid_dpop_proof"')


@pytest.mark.requirement("rfc9449:rs-bearer-downgrade")
@pytest.mark.parametrize("mode", MODES)
async def test_a_bound_token_sent_as_bearer_is_refused(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    key = DpopKey.generate()
    r = await h.call(bound(fake_as, key))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert any(c.startswith('DPoP error="invalid_token"') for c in www(r))
    assert h.app.bodies == []


@pytest.mark.requirement("rfc9449:rs-bearer-downgrade")
async def test_a_bound_token_sent_as_bearer_is_refused_even_with_dpop_off(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(dpop_algorithms=())
    r = await h.call(bound(fake_as, DpopKey.generate()))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


@pytest.mark.requirement("rfc9449:rs-scheme")
@pytest.mark.parametrize("mode", MODES)
async def test_a_token_bound_to_another_key_is_refused(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    key, other = DpopKey.generate(), DpopKey.generate()
    token = bound(fake_as, key)
    r = await dpop_call(h, token, other.proof("POST", URL, access_token=token))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


@pytest.mark.requirement("rfc9449:rs-scheme")
async def test_an_unbound_token_under_the_dpop_scheme_is_refused(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    key = DpopKey.generate()
    token = fake_as.mint()
    r = await dpop_call(h, token, key.proof("POST", URL, access_token=token))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


@pytest.mark.requirement("rfc9449:rs-scheme")
@pytest.mark.parametrize("mode", MODES)
async def test_a_wrong_ath_is_refused(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    key = DpopKey.generate()
    token = bound(fake_as, key)
    other_token = bound(fake_as, key)
    r = await dpop_call(h, token, key.proof("POST", URL, access_token=other_token))
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof"
    r = await dpop_call(h, token, key.proof("POST", URL))  # no ath at all
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof"


def _rs_cases(key: DpopKey, token: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "1-missing-proof": None,
        "2-not-a-jwt": "garbage",
        "4-typ": _retyp(key, token),
        "8-htm": key.proof("GET", URL, access_token=token),
        "9-htu-other-path": key.proof("POST", "http://rs.test/other", access_token=token),
        "9-htu-other-host": key.proof("POST", "http://evil.test/mcp", access_token=token),
        "11-iat-old": key.proof("POST", URL, access_token=token, iat=now - 400),
        "11-iat-future": key.proof("POST", URL, access_token=token, iat=now + 400),
    }


def _retyp(key: DpopKey, token: str) -> str:
    from tests.authz.oauth.test_dpop_token import _forge

    proof = _forge(key, header={"typ": "JWT"})
    return proof


@pytest.mark.requirement("rfc9449:proof-checks")
@pytest.mark.parametrize("case", sorted(_rs_cases(DpopKey.generate(), "t")))
async def test_each_proof_check_at_the_resource_server(make_harness, fake_as: FakeAS, case: str) -> None:
    h = make_harness()
    key = DpopKey.generate()
    token = bound(fake_as, key)
    r = await dpop_call(h, token, _rs_cases(key, token)[case])
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof", (case, r.text)
    assert token not in r.text


@pytest.mark.requirement("rfc9449:proof-checks")
async def test_two_dpop_headers_are_refused_at_the_resource_server(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    key = DpopKey.generate()
    token = bound(fake_as, key)
    headers = [
        ("authorization", f"DPoP {token}"),
        ("dpop", key.proof("POST", URL, access_token=token)),
        ("dpop", key.proof("POST", URL, access_token=token)),
        ("content-type", "application/json"),
    ]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {}}}
    r = await h.client.post("/mcp", content=json.dumps(body).encode(), headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof"


# -- challenges and metadata ------------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:rs-challenge")
async def test_no_credentials_gets_bearer_and_dpop_challenges(make_harness) -> None:
    h = make_harness()
    r = await h.call(None)
    assert r.status_code == 401
    bearer, dpop = www(r)
    assert bearer.startswith("Bearer ") and "error=" not in bearer
    assert dpop.startswith('DPoP algs="ES256 EdDSA RS256 PS256"') and "resource_metadata=" in dpop


@pytest.mark.requirement("rfc9449:rs-challenge")
async def test_required_dpop_refuses_bearer_with_a_dpop_challenge_only(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(dpop_required=True)
    r = await h.call(fake_as.mint())
    assert r.status_code == 401
    assert [c.split(" ")[0] for c in www(r)] == ["DPoP"]
    key = DpopKey.generate()
    token = bound(fake_as, key)
    assert (await dpop_call(h, token, key.proof("POST", URL, access_token=token))).status_code == 200


@pytest.mark.requirement("rfc9728:dpop-metadata")
async def test_protected_resource_metadata_names_dpop(make_harness) -> None:
    doc = (await make_harness(dpop_required=True).client.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert doc["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256", "PS256"]
    assert doc["dpop_bound_access_tokens_required"] is True
    doc = (await make_harness().client.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert doc["dpop_bound_access_tokens_required"] is False


def test_symmetric_dpop_algorithms_are_refused_in_the_config() -> None:
    from tests.resource_server.conftest import config

    with pytest.raises(ValueError, match="dpop_algorithms"):
        config(dpop_algorithms=("HS256",))


# -- nonces (§9) -----------------------------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:rs-nonce")
async def test_nonce_challenge_then_retry(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(dpop_nonce=True, dpop_nonce_key=b"k" * 32)
    key = DpopKey.generate()
    token = bound(fake_as, key)
    r = await dpop_call(h, token, key.proof("POST", URL, access_token=token))
    assert r.status_code == 401 and r.json()["error"] == "use_dpop_nonce"
    assert www(r)[0].startswith('DPoP error="use_dpop_nonce"')
    nonce = r.headers["dpop-nonce"]
    ok = await dpop_call(h, token, key.proof("POST", URL, access_token=token, nonce=nonce))
    assert ok.status_code == 200, ok.text


@pytest.mark.requirement("rfc9449:rs-nonce")
async def test_nonce_rotation_and_replicas_sharing_the_nonce_key(make_harness, fake_as: FakeAS) -> None:
    """Two replicas with the same key accept each other's nonces; an expired nonce gets a fresh one."""
    a = make_harness(dpop_nonce=True, dpop_nonce_key=b"n" * 32)
    b = make_harness(dpop_nonce=True, dpop_nonce_key=b"n" * 32)
    key = DpopKey.generate()
    token = bound(fake_as, key)
    nonce = (await dpop_call(a, token, key.proof("POST", URL, access_token=token))).headers["dpop-nonce"]
    assert (await dpop_call(b, token, key.proof("POST", URL, access_token=token, nonce=nonce))).status_code == 200
    nonces = b.rs._dpop.nonces
    real = nonces._clock
    nonces._clock = lambda: real() + nonces.ttl + 10  # the nonce has expired
    r = await dpop_call(b, token, key.proof("POST", URL, access_token=token, nonce=nonce))
    assert r.status_code == 401 and r.json()["error"] == "use_dpop_nonce"
    assert r.headers["dpop-nonce"] != nonce


# -- replay cache shared by replicas ------------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:jti-replay")
async def test_two_replicas_share_a_redis_replay_cache(fake_as: FakeAS, redis_url: str) -> None:
    import redis.asyncio as aioredis

    from resource_server import ResourceServerMiddleware
    from resource_server.dpop import RedisReplayCache
    from tests.resource_server.conftest import EchoApp, as_client, config

    shared = aioredis.Redis.from_url(redis_url)
    clients = []
    try:
        replicas = []
        for _ in range(2):
            http = as_client(fake_as)
            rs = ResourceServerMiddleware(EchoApp(), config(), http_client=http, dpop_replay=RedisReplayCache(shared))
            client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=rs), base_url="http://rs.test")
            clients += [http, client]
            replicas.append(client)
        key = DpopKey.generate()
        token = bound(fake_as, key)
        headers = {"authorization": f"DPoP {token}", "dpop": key.proof("POST", URL, access_token=token)}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add"}}).encode()
        headers["content-type"] = "application/json"
        assert (await replicas[0].post("/mcp", content=body, headers=headers)).status_code == 200
        replayed = await replicas[1].post("/mcp", content=body, headers=headers)
        assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_dpop_proof"
    finally:
        for c in clients:
            await c.aclose()
        await shared.aclose()


async def test_memory_replay_cache_forgets_after_the_window() -> None:
    now = [1000.0]
    cache = MemoryReplayCache(clock=lambda: now[0])
    assert await cache.first_use("a", 10) is True
    assert await cache.first_use("a", 10) is False
    now[0] += 11
    assert await cache.first_use("a", 10) is True
