"""``BudgetHook`` against a stub AS: refusals, fail closed / open, background settles in batches."""

from __future__ import annotations

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


def use(**claims: Any) -> UseContext:
    info = TokenInfo.from_claims({"sub": "u", "exp": time.time() + 60, **claims})
    return UseContext(token=info, calls=(), http_method="POST", path="/mcp", required_scopes=frozenset())


class StubAS:
    def __init__(self, reserve: httpx2.Response | Exception) -> None:
        self.reserve = reserve
        self.settles: list[list[dict[str, Any]]] = []
        self.reserves = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/token":
            return httpx2.Response(200, json={"access_token": "t", "expires_in": 300})
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
        {"reservation_id": "h"},
        {"reservation_id": "h", "release": True},
        {"reservation_id": "h", "actual": {"calls": 1, "tokens": 42}},
    ]
    await h.aclose()
