"""JWKS handling: fetched once, refetched on an unknown kid at most once per interval."""

import pytest

from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio


async def test_jwks_fetched_once_for_many_requests(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt")
    for _ in range(5):
        assert (await h.call(fake_as.mint())).status_code == 200
    assert fake_as.jwks_calls == 1
    assert fake_as.introspection_calls == 0


async def test_unknown_kid_triggers_one_refetch(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt", jwks_min_refetch_interval=0.0)
    assert (await h.call(fake_as.mint())).status_code == 200
    fake_as.rotate()
    assert (await h.call(fake_as.mint())).status_code == 200  # new kid -> refetch -> accepted
    assert fake_as.jwks_calls == 2
    assert (await h.call(fake_as.mint())).status_code == 200
    assert fake_as.jwks_calls == 2


async def test_unknown_kid_refetch_is_rate_limited(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt", jwks_min_refetch_interval=3600.0)
    assert (await h.call(fake_as.mint())).status_code == 200
    for kid in ("nope-1", "nope-2", "nope-3"):
        r = await h.call(fake_as.mint(header={"kid": kid}))
        assert r.status_code == 401
    assert fake_as.jwks_calls == 1  # a flood of unknown kids cannot hammer the AS
    fake_as.rotate()
    assert (await h.call(fake_as.mint())).status_code == 401  # even a real new key waits for the interval


async def test_jwks_down_is_503(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt")
    fake_as.down = True
    r = await h.call(fake_as.mint())
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"


async def test_token_signed_by_an_unpublished_key_is_rejected(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt")
    from joserfc.jwk import ECKey

    rogue = ECKey.generate_key("P-256", parameters={"kid": "k1"})  # same kid, different key
    assert (await h.call(fake_as.mint(key=rogue))).status_code == 401


async def test_jwt_mode_needs_no_client_credentials(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="jwt", client_id=None, client_secret=None)
    assert (await h.call(fake_as.mint())).status_code == 200


async def test_hybrid_catches_a_revoked_token(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="hybrid", revocation_staleness=0.0)
    token = fake_as.mint()
    assert (await h.call(token)).status_code == 200
    fake_as.revoke(token)
    r = await h.call(token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_hybrid_never_sends_forged_tokens_to_the_as(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="hybrid")
    from joserfc.jwk import ECKey

    rogue = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    assert (await h.call(fake_as.mint(key=rogue))).status_code == 401
    assert (await h.call(fake_as.mint(aud="http://other.test/mcp"))).status_code == 401
    assert fake_as.introspection_calls == 0
    assert (await h.call(fake_as.mint())).status_code == 200
    assert fake_as.introspection_calls == 1


async def test_hybrid_revocation_check_is_cached_within_the_staleness_bound(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="hybrid", revocation_staleness=60.0, cache_ttl=60.0)
    token = fake_as.mint()
    for _ in range(3):
        assert (await h.call(token)).status_code == 200
    assert fake_as.introspection_calls == 1
