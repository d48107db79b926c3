"""The memo of verified JWTs (``jwt``/``hybrid`` modes): fast path without weaker checks.

A token is served from the memo only after it passed every RFC 9068 check, only while
``now < exp + leeway`` and only while the key set that verified it is still current.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from joserfc.jwk import ECKey

from resource_server.discovery import Discovery
from resource_server.errors import InvalidToken
from resource_server.jwt import JwksCache, JwtVerifier, VerifiedTokenMemo
from tests.resource_server.conftest import ISSUER, RESOURCE, as_client
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http(fake_as: FakeAS) -> AsyncIterator[httpx2.AsyncClient]:
    client = as_client(fake_as)
    yield client
    await client.aclose()


def verifier(http: httpx2.AsyncClient, clock: Clock | None = None, **kwargs: Any) -> JwtVerifier:
    jwks = JwksCache(Discovery(ISSUER, http), http, min_refetch_interval=kwargs.pop("refetch", 10.0))
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return JwtVerifier(jwks, resource=RESOURCE, issuer=ISSUER, leeway=30.0, **extra, **kwargs)


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count full signature verifications (joserfc decode calls)."""
    import resource_server.jwt as mod

    calls: list[str] = []
    real = mod.jose_jwt.decode

    def counting(token: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(mod.jose_jwt, "decode", counting)
    return calls


async def test_a_verified_token_is_served_from_the_memo(http, fake_as: FakeAS, monkeypatch) -> None:
    decodes = count_decodes(monkeypatch)
    v = verifier(http)
    token = fake_as.mint()
    first = await v.verify(token)
    for _ in range(5):
        assert await v.verify(token) is first
    assert len(decodes) == 1
    assert v.memo is not None and len(v.memo) == 1


async def test_an_expired_token_is_never_served_from_the_memo(http, fake_as: FakeAS, monkeypatch) -> None:
    clock = Clock(fake_as.claims()["iat"])
    v = verifier(http, clock)
    exp = int(clock.now) + 60
    token = fake_as.mint(exp=exp)
    await v.verify(token)
    clock.now = exp + 30 - 0.001  # still inside the leeway: served (as a full check would accept it)
    await v.verify(token)
    clock.now = exp + 30  # the exact instant a full verification starts refusing it
    with pytest.raises(InvalidToken, match="expired"):
        await v.verify(token)
    assert v.memo is not None and len(v.memo) == 0
    with pytest.raises(InvalidToken, match="expired"):
        await v.verify(token)


async def test_a_token_for_another_audience_never_enters_the_memo(http, fake_as: FakeAS) -> None:
    v = verifier(http)
    token = fake_as.mint(aud="http://other.test/mcp")
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not issued for this resource"):
            await v.verify(token)
    assert v.memo is not None and len(v.memo) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"iss": "http://evil.test"},
        {"scope": ["not", "a", "string"]},
        {"sub": ""},
    ],
)
async def test_tokens_failing_any_claim_check_never_enter_the_memo(http, fake_as: FakeAS, bad) -> None:
    v = verifier(http)
    with pytest.raises(InvalidToken):
        await v.verify(fake_as.mint(**bad))
    assert v.memo is not None and len(v.memo) == 0


async def test_a_forged_signature_never_enters_the_memo(http, fake_as: FakeAS) -> None:
    v = verifier(http)
    good = fake_as.mint()
    await v.verify(good)
    rogue = ECKey.generate_key("P-256", parameters={"kid": "k1"})  # same kid, another key
    forged = fake_as.mint(key=rogue)
    with pytest.raises(InvalidToken, match="signature"):
        await v.verify(forged)
    # Same claims as the memoised token but other bytes: still refused (keyed by the whole token).
    header, payload, _sig = good.split(".")
    with pytest.raises(InvalidToken):
        await v.verify(f"{header}.{payload}.{forged.split('.')[2]}")
    assert v.memo is not None and len(v.memo) == 1


async def test_a_jwks_refetch_sends_memoised_tokens_through_full_verification(http, fake_as: FakeAS) -> None:
    v = verifier(http, refetch=0.0)
    old = fake_as.mint()
    await v.verify(old)
    new_key = fake_as.rotate()
    fake_as.published = [new_key]  # the AS drops the old key
    await v.verify(fake_as.mint())  # unknown kid -> refetch -> new key set
    with pytest.raises(InvalidToken, match="unknown key"):
        await v.verify(old)  # no longer served from the memo


async def test_the_memo_is_bounded(http, fake_as: FakeAS) -> None:
    v = verifier(http, memo_max_entries=2)
    tokens = [fake_as.mint() for _ in range(3)]
    for token in tokens:
        await v.verify(token)
    assert v.memo is not None and len(v.memo) == 2


async def test_the_memo_can_be_disabled(http, fake_as: FakeAS, monkeypatch) -> None:
    decodes = count_decodes(monkeypatch)
    v = verifier(http, memo_max_entries=0)
    token = fake_as.mint()
    await v.verify(token)
    await v.verify(token)
    assert v.memo is None and len(decodes) == 2


def test_memo_never_stores_an_entry_already_past_its_deadline() -> None:
    from resource_server.context import TokenInfo

    memo = VerifiedTokenMemo(4)
    info = TokenInfo(subject="s", client_id="c", scopes=frozenset(), audience=(), issuer=None, expires_at=1)
    memo.put(b"k", deadline=100.0, generation=1, info=info, now=100.0)
    assert len(memo) == 0
    memo.put(b"k", deadline=100.0, generation=1, info=info, now=99.0)
    assert memo.get(b"k", 99.5, 1) is info
    assert memo.get(b"k", 99.5, 2) is None  # another key set generation: gone
    assert len(memo) == 0


async def test_hybrid_still_sees_a_revocation_with_a_memoised_jwt(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(mode="hybrid", revocation_staleness=0.0)
    token = fake_as.mint()
    for _ in range(3):
        assert (await h.call(token)).status_code == 200
    fake_as.revoke(token)
    r = await h.call(token)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
