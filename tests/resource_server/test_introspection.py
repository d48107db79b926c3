"""RFC 7662 introspection mode: authentication, validation, cache, single-flight, failures."""

import anyio
import httpx2
import pytest

from resource_server.cache import TokenCache, token_digest
from resource_server.context import TokenInfo
from resource_server.errors import InvalidToken, UpstreamUnavailable
from resource_server.introspection import validate_introspection
from tests.resource_server.conftest import ISSUER, RESOURCE
from tests.resource_server.fake_as import FakeAS, free_port

pytestmark = pytest.mark.anyio


async def test_introspection_accepts_active_token(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection")
    r = await h.call(fake_as.mint(agent="agent-7"))
    assert r.status_code == 200
    assert fake_as.introspection_calls == 1


async def test_wrong_rs_credentials_are_503_not_a_pass(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection", client_secret="wrong")
    r = await h.call(fake_as.mint())
    assert r.status_code == 503
    assert h.app.bodies == []


async def test_single_flight_concurrent_requests_cost_one_introspection(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection")
    token = fake_as.mint()
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await h.call(token)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert statuses == [200] * 20
    assert fake_as.introspection_calls == 1


async def test_single_flight_shares_a_negative_answer(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection")
    token = fake_as.mint(aud="http://other.test/mcp")
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await h.call(token)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    assert statuses == [401] * 10
    assert fake_as.introspection_calls == 1


async def test_negative_cache_remembers_inactive_tokens(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection", negative_cache_ttl=5.0)
    token = fake_as.mint()
    fake_as.revoke(token)
    assert (await h.call(token)).status_code == 401
    assert (await h.call(token)).status_code == 401
    assert fake_as.introspection_calls == 1


async def test_revoked_token_rejected_after_the_cache_bound(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection", cache_ttl=0.2)
    token = fake_as.mint()
    assert (await h.call(token)).status_code == 200
    fake_as.revoke(token)
    assert (await h.call(token)).status_code == 200  # still cached: at most cache_ttl stale
    await anyio.sleep(0.3)
    r = await h.call(token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_as_down_is_503_with_retry_after(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="introspection", retry_after=7)
    token = fake_as.mint()
    fake_as.down = True
    r = await h.call(token)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert token not in r.text
    fake_as.down = False  # recovery: errors are not cached
    assert (await h.call(token)).status_code == 200


@pytest.mark.parametrize("mode", ["introspection", "jwt", "hybrid"])
async def test_as_connection_refused_is_503(make_harness, fake_as: FakeAS, mode) -> None:
    port = free_port()
    h = make_harness(mode=mode, issuer=f"http://127.0.0.1:{port}", http=httpx2.AsyncClient(timeout=2))
    r = await h.call(fake_as.mint(iss=f"http://127.0.0.1:{port}"))
    assert r.status_code == 503
    assert "retry-after" in r.headers
    assert h.app.bodies == []


async def test_metadata_issuer_mismatch_is_never_used(make_harness, fake_as: FakeAS) -> None:
    fake_as.metadata_issuer = ISSUER + "/"
    h = make_harness(mode="introspection")
    assert (await h.call(fake_as.mint())).status_code == 503
    assert fake_as.introspection_calls == 0


def test_validate_introspection_rules() -> None:
    base = {"active": True, "aud": RESOURCE, "iss": ISSUER, "exp": 2_000, "sub": "u", "scope": "a b"}
    info = validate_introspection(base, resource=RESOURCE, issuer=ISSUER, now=1_000)
    assert info.scopes == frozenset({"a", "b"}) and info.audience == (RESOURCE,)
    assert validate_introspection({**base, "aud": ["x", RESOURCE]}, resource=RESOURCE, issuer=ISSUER, now=1_000)
    for bad in (
        {**base, "active": False},
        {**base, "active": "true"},
        {**base, "aud": "x"},
        {**base, "iss": "http://evil"},
        {**base, "exp": 999},
        {**base, "token_type": "refresh_token"},
    ):
        with pytest.raises(InvalidToken):
            validate_introspection(bad, resource=RESOURCE, issuer=ISSUER, now=1_000)
    without_iss = {k: v for k, v in base.items() if k != "iss"}
    assert validate_introspection(without_iss, resource=RESOURCE, issuer=ISSUER, now=1_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _info(exp: int | None) -> TokenInfo:
    return TokenInfo(
        subject="u", client_id="c", scopes=frozenset(), audience=(RESOURCE,), issuer=ISSUER, expires_at=exp
    )


async def test_cache_entry_never_outlives_exp_nor_the_bound() -> None:
    clock = Clock()
    cache = TokenCache(ttl=60, negative_ttl=5, clock=clock)
    loads = 0

    async def load_exp_soon() -> TokenInfo:
        nonlocal loads
        loads += 1
        return _info(exp=1_010)

    await cache.get_or_load("t1", load_exp_soon)
    clock.now = 1_009
    await cache.get_or_load("t1", load_exp_soon)
    assert loads == 1
    clock.now = 1_010  # token exp reached before the 60 s bound
    await cache.get_or_load("t1", load_exp_soon)
    assert loads == 2

    async def load_long_lived() -> TokenInfo:
        nonlocal loads
        loads += 1
        return _info(exp=100_000)

    clock.now = 2_000
    await cache.get_or_load("t2", load_long_lived)
    clock.now = 2_059
    await cache.get_or_load("t2", load_long_lived)
    assert loads == 3
    clock.now = 2_060  # the configured bound
    await cache.get_or_load("t2", load_long_lived)
    assert loads == 4


async def test_negative_entry_expires_and_errors_are_not_cached() -> None:
    clock = Clock()
    cache = TokenCache(ttl=60, negative_ttl=5, clock=clock)
    calls = 0

    async def inactive() -> TokenInfo:
        nonlocal calls
        calls += 1
        raise InvalidToken("inactive")

    async def down() -> TokenInfo:
        nonlocal calls
        calls += 1
        raise UpstreamUnavailable("down")

    for _ in range(2):
        with pytest.raises(InvalidToken):
            await cache.get_or_load("t", inactive)
    assert calls == 1
    clock.now += 5
    with pytest.raises(InvalidToken):
        await cache.get_or_load("t", inactive)
    assert calls == 2
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await cache.get_or_load("u", down)
    assert calls == 4


async def test_cache_is_bounded_lru_and_keyed_by_digest() -> None:
    cache = TokenCache(ttl=60, max_entries=2, clock=Clock())

    async def load() -> TokenInfo:
        return _info(exp=None)

    await cache.get_or_load("secret-a", load)
    await cache.get_or_load("secret-b", load)
    await cache.get_or_load("secret-a", load)  # a is now most recent
    await cache.get_or_load("secret-c", load)  # evicts b
    assert len(cache) == 2
    keys = list(cache._entries)
    assert keys == [token_digest("secret-a"), token_digest("secret-c")]
    assert all(b"secret" not in k for k in keys)
