"""``BudgetHook`` against a stub AS: leases, refusals, fail closed / open, background settles in batches."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx2
import pytest

from resource_server.budget import BudgetHook
from resource_server.context import TokenInfo
from resource_server.hooks import UseContext, UseOutcome

pytestmark = pytest.mark.anyio
ISSUER = "http://as.test"


TOKEN_PATHS = ("/.well-known/oauth-authorization-server", "/token")


def token_side(request: httpx2.Request) -> httpx2.Response:
    """RFC 8414 metadata and the token endpoint it names: the hook's admin-API token."""
    if request.url.path == "/token":
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        assert form["grant_type"] == "client_credentials" and form["scope"] == "budgets%3Ause", form
        return httpx2.Response(200, json={"access_token": "t", "expires_in": 300})
    return httpx2.Response(200, json={"issuer": ISSUER, "token_endpoint": ISSUER + "/token"})


def use(**claims: Any) -> UseContext:
    info = TokenInfo.from_claims({"sub": "u", "exp": time.time() + 60, **claims})
    return UseContext(token=info, calls=(), http_method="POST", path="/mcp", required_scopes=frozenset())


class StubAS:
    def __init__(self, reserve: httpx2.Response | Exception) -> None:
        self.reserve = reserve
        self.settles: list[list[dict[str, Any]]] = []
        self.reserves = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path in TOKEN_PATHS:
            return token_side(request)
        if request.url.path == "/api/v1/budgets/reserve":
            self.reserves += 1
            if isinstance(self.reserve, Exception):
                raise self.reserve
            return self.reserve
        self.settles.append(json.loads(request.content)["settlements"])
        return httpx2.Response(200, json={"results": []})


def hook(stub: StubAS, **kw: Any) -> BudgetHook:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(stub))
    return BudgetHook(ISSUER, "rs", "secret", http_client=client, settle_delay=0, **kw)


async def test_exhausted_is_429_with_retry_after_and_problem() -> None:
    problem = {"type": "urn:authz:problem:budget-exhausted", "title": "Budget exhausted", "status": 429,
               "detail": "Budget b1 is exhausted until 2026-11-28T00:00:00+00:00.", "budget_id": "b1",
               "period_end": "2026-11-28T00:00:00+00:00"}  # fmt: skip
    stub = StubAS(httpx2.Response(429, json=problem, headers={"Retry-After": "3600"}))
    refusal = await hook(stub).before(use(agent="a"))
    assert refusal is not None and refusal.status == 429
    headers = dict(refusal.headers)
    assert headers["retry-after"] == "3600" and headers["content-type"] == "application/problem+json"
    body = json.loads(refusal.body)
    assert body["budget_id"] == "b1" and body["type"] == "urn:authz:problem:budget-exhausted"


async def test_unreachable_fails_closed_or_open() -> None:
    stub = StubAS(httpx2.ConnectError("refused"))
    refusal = await hook(stub).before(use(agent="a"))
    assert refusal is not None and refusal.status == 503 and dict(refusal.headers)["retry-after"] == "5"
    assert await hook(stub, fail_closed=False).before(use(agent="a")) is None
    stub500 = StubAS(httpx2.Response(500, text="boom"))
    assert (await hook(stub500).before(use(agent="a"))).status == 503  # type: ignore[union-attr]


async def test_no_principal_no_round_trip() -> None:
    stub = StubAS(httpx2.Response(200, json={"reservation_id": "h"}))
    assert await hook(stub).before(use()) is None
    assert stub.reserves == 0


async def test_settles_are_batched_in_the_background_and_failures_release() -> None:
    stub = StubAS(httpx2.Response(200, json={"reservation_id": "h"}))
    h = hook(stub)
    h.settle_delay = 0.05
    uses = [use(agent="a") for _ in range(3)]
    for u in uses:
        assert await h.before(u) is None
    await h.after(uses[0], UseOutcome(status=200, duration=0.0))
    await h.after(uses[1], UseOutcome(status=None, duration=0.0, error=RuntimeError()))
    await h.after(uses[2], UseOutcome(status=200, duration=0.0, usage={"tokens": 42}))
    assert stub.settles == []  # not on the response path
    await h.drain()
    assert len(stub.settles) == 1
    assert stub.settles[0] == [
        {"reservation_id": "h", "actual": {"calls": 1, "tokens": 0}},
        {"reservation_id": "h", "release": True},
        {"reservation_id": "h", "actual": {"calls": 1, "tokens": 42}},
    ]
    await h.aclose()


class LeasingAS:
    """A stub AS that grants what fits of ``units`` against one hard call cap, like the real one."""

    def __init__(self, cap: int = 1_000_000) -> None:
        self.cap, self.held, self.spent = cap, 0, 0
        self.reserves: list[int] = []  # units asked, per reserve
        self.leases: dict[str, int] = {}
        self.settled: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path in TOKEN_PATHS:
            return token_side(request)
        body = json.loads(request.content)
        if request.url.path == "/api/v1/budgets/reserve":
            self.reserves.append(body["units"])
            fits = min(body["units"], self.cap - self.spent - self.held)
            if fits < 1:
                return httpx2.Response(429, json={"title": "Budget exhausted", "budget_id": "b"},
                                       headers={"Retry-After": "60"})  # fmt: skip
            handle = f"h{len(self.reserves)}"
            self.leases[handle] = fits
            self.held += fits
            return httpx2.Response(200, json={"reservation_id": handle, "budgets": ["b"], "units": fits})
        for item in body["settlements"]:
            self.held -= self.leases.pop(item["reservation_id"])
            self.spent += 0 if item.get("release") else item["actual"]["calls"]
            self.settled.append(item)
        return httpx2.Response(200, json={"results": []})


def leasing_hook(stub: LeasingAS, **kw: Any) -> BudgetHook:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(stub))
    return BudgetHook(ISSUER, "rs", "secret", http_client=client, settle_delay=0, **kw)


async def run_use(h: BudgetHook, status: int | None = 200) -> int:
    u = use(agent="a", team="t")
    refusal = await h.before(u)
    if refusal is not None:
        return refusal.status
    await asyncio.sleep(0)
    await h.after(u, UseOutcome(status=status, duration=0.0))
    return 200


async def test_concurrent_uses_share_one_lease_and_settle_it_once() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub)
    assert await asyncio.gather(*(run_use(h) for _ in range(20))) == [200] * 20
    assert stub.reserves == [20]  # one round trip for every use waiting on the first lease
    await h.drain()
    assert stub.settled == [{"reservation_id": "h1", "actual": {"calls": 20, "tokens": 0}}]
    assert (stub.spent, stub.held) == (20, 0)
    await h.aclose()


async def test_later_uses_take_units_of_a_held_lease_without_a_round_trip() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub, lease_max=50)
    assert await asyncio.gather(*(run_use(h) for _ in range(5))) == [200] * 5
    assert stub.reserves == [5]
    for _ in range(30):  # the burst taught the hook the rate: the next lease covers many uses
        assert await run_use(h) == 200
    assert stub.reserves == [5, 50]
    assert await run_use(h, status=None) == 200  # failed before answering: not charged
    await h.drain()  # returns the rest of the lease
    assert (stub.spent, stub.held) == (35, 0)
    assert stub.settled[-1] == {"reservation_id": "h2", "actual": {"calls": 30, "tokens": 0}}
    await h.aclose()


async def test_near_the_cap_the_lease_shrinks_and_the_rest_is_refused() -> None:
    stub = LeasingAS(cap=7)
    h = leasing_hook(stub)
    statuses = await asyncio.gather(*(run_use(h) for _ in range(10)))
    assert sorted(statuses) == [200] * 7 + [429] * 3
    assert stub.reserves == [10, 64]  # 7 granted of 10; the 3 still waiting asked again (at the learnt size): refused
    await h.drain()
    assert (stub.spent, stub.held) == (7, 0)
    assert await run_use(h) == 429
    await h.aclose()


async def test_an_idle_lease_is_returned_and_the_subject_forgotten() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub, lease_idle=0.5, lease_age=5.0)
    await asyncio.gather(*(run_use(h) for _ in range(3)))
    await run_use(h)  # a second, larger lease, mostly unused
    assert len(stub.reserves) == 2 and stub.held > 1
    h.sweep(time.monotonic() + 0.1)
    assert stub.held > 1  # not idle long enough yet
    h.sweep(time.monotonic() + 1.0)
    await h.drain()
    assert (stub.spent, stub.held) == (4, 0)
    h.sweep(time.monotonic() + 60)
    assert h._slots == {}
    await h.aclose()


async def test_a_use_cancelled_while_waiting_takes_no_unit() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub)
    gone = asyncio.create_task(h.before(use(agent="a", team="t")))
    await asyncio.sleep(0)  # it is waiting for the first lease
    gone.cancel()
    assert await run_use(h) == 200
    await h.drain()
    assert stub.spent == 1 and stub.held == 0
    await h.aclose()


def test_lease_max_is_bounded() -> None:
    with pytest.raises(ValueError, match="lease_max"):
        BudgetHook(ISSUER, "rs", "secret", lease_max=0)


async def test_the_next_lease_is_leased_ahead_and_the_uses_after_the_last_unit_do_not_wait() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub, lease_max=16)
    assert await asyncio.gather(*(run_use(h) for _ in range(16))) == [200] * 16
    for _ in range(12):  # a second lease of 16; the 12th use opens its last quarter
        assert await run_use(h) == 200
    await asyncio.sleep(0.05)  # the reserve ahead, in the background
    assert len(stub.reserves) == 3 and stub.reserves[:2] == [16, 16]
    assert stub.reserves[2] <= 16 - 4  # never more than lease_max unused for the subject, both leases together
    for _ in range(4 + 2):  # the rest of the second lease, then units of the one leased ahead
        assert await run_use(h) == 200
    assert len(stub.reserves) == 3  # nobody waited for a round trip
    await h.drain()
    assert (stub.spent, stub.held) == (34, 0)
    await h.aclose()


async def test_a_lease_leased_ahead_and_never_used_goes_back() -> None:
    stub = LeasingAS()
    h = leasing_hook(stub, lease_max=16, lease_idle=0.5)
    assert await asyncio.gather(*(run_use(h) for _ in range(16))) == [200] * 16
    for _ in range(12):
        assert await run_use(h) == 200
    await asyncio.sleep(0.05)
    assert len(stub.reserves) == 3
    h.sweep(time.monotonic() + 1.0)  # the current lease idle: returned, the one ahead takes over
    h.sweep(time.monotonic() + 2.0)  # idle since granted: returned too
    await h.drain()
    assert (stub.spent, stub.held) == (28, 0)
    await h.aclose()
