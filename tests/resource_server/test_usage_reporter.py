"""UsageReporter against the real authorization server (in process, through ASGI): batching, retry
after a 500, no duplicates after a retry, token events from tool code, flush on close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx2
import pytest
from starlette.types import Receive, Scope, Send

from authz.admin.bootstrap import create_admin_client
from resource_server import CompositeHook, Refusal, TokenInfo, UseContext, UseOutcome
from resource_server.context import RequestContext, bind_request_context, record_usage
from resource_server.scopes import McpCall
from resource_server.usage import (
    UsageReporter,
    record_outcome,
    record_tokens,
    tokens_by_model,
    with_reporter_lifespan,
)
from tests.authz.conftest import AS, ISSUER, as_factory, authz
from tests.resource_server.fake_as import FakeAS

__all__ = ["as_factory", "authz"]

pytestmark = pytest.mark.anyio
MCP = "http://mcp.test/mcp"


class Flaky:
    """Wraps the AS app: the first ``fail`` event POSTs get a 500 — before (``lose_ack=False``) or
    after (``lose_ack=True``, i.e. stored but the answer is lost) the AS handled them."""

    def __init__(self, app: Any, fail: int, *, lose_ack: bool = False) -> None:
        self.app, self.fail, self.lose_ack, self.posts = app, fail, lose_ack, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/metering/events"):
            self.posts += 1
            if self.fail > 0:
                self.fail -= 1
                if self.lose_ack:

                    async def swallow(message: Any) -> None:
                        return None

                    await self.app(scope, receive, swallow)
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"boom"})
                return
        await self.app(scope, receive, send)


def reporter_for(srv: AS, app: Any = None, **kwargs: Any) -> UsageReporter:
    reg = create_admin_client(srv.ctx.store, srv.ctx.keyring, srv.settings, name="mcp-meter", scopes=["metering:write"])
    assert reg.client_secret
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app or srv.app))
    kwargs.setdefault("retry_initial", 0.01)
    return UsageReporter(
        issuer=ISSUER, resource=MCP, client_id=reg.client_id, client_secret=reg.client_secret, http=http, **kwargs
    )


def use(jti: str = "jti-1", tool: str | None = "add", request_id: int = 1, **claims: Any) -> UseContext:
    token = TokenInfo.from_claims({"sub": "user-1", "client_id": "agent-client", "jti": jti, **claims})
    call = McpCall(method="tools/call", name=tool, request_id=request_id) if tool else McpCall(method="tools/list")
    return UseContext(token=token, calls=(call,), http_method="POST", path="/mcp", required_scopes=frozenset())


def outcome(status: int | None = 200, **usage: float) -> UseOutcome:
    return UseOutcome(status=status, duration=0.0123, usage=usage)


def counted(srv: AS, **group: Any) -> list[dict[str, Any]]:
    assert srv.ctx.metering is not None
    srv.ctx.metering.flush()
    return srv.ctx.metering.usage(0, 2**40, "month", **group)


async def test_calls_are_batched_and_counted_once(authz: AS) -> None:
    flaky = Flaky(authz.app, 0)
    reporter = reporter_for(authz, flaky, batch_size=100, flush_interval=60)
    for i in range(250):
        await reporter.after(use(agent="agt_7", team="t1", workflow="wf", request_id=i), outcome())
    await reporter.aclose()
    assert flaky.posts == 3  # 100 + 100 + 50
    assert (reporter.accepted, reporter.duplicates, reporter.rejected, reporter.dropped) == (250, 0, 0, 0)
    rows = counted(authz, group_by=["type", "agent", "team", "workflow", "tool", "mcp_server"])
    assert rows == [rows[0]] and rows[0]["count"] == 250
    assert (rows[0]["type"], rows[0]["agent"], rows[0]["team"], rows[0]["tool"]) == (
        "call.completed",
        "agt_7",
        "t1",
        "add",
    )
    assert rows[0]["mcp_server"] == MCP and rows[0]["latency_ms"] == 250 * 12


async def test_background_task_ships_on_interval(authz: AS) -> None:
    reporter = reporter_for(authz, flush_interval=0.05)
    await reporter.after(use(), outcome())
    for _ in range(100):
        if reporter.accepted:
            break
        await asyncio.sleep(0.02)
    assert reporter.accepted == 1 and reporter.pending() == 0
    await reporter.aclose()


async def test_full_batch_ships_without_waiting_for_the_interval(authz: AS) -> None:
    reporter = reporter_for(authz, batch_size=10, flush_interval=3600)
    for i in range(10):
        await reporter.after(use(request_id=i), outcome())
    for _ in range(100):
        if reporter.accepted == 10:
            break
        await asyncio.sleep(0.02)
    assert reporter.accepted == 10
    await reporter.aclose()


async def test_retry_after_500_sends_again(authz: AS) -> None:
    flaky = Flaky(authz.app, 2)
    reporter = reporter_for(authz, flaky, flush_interval=60)
    for i in range(5):
        await reporter.after(use(request_id=i), outcome())
    await reporter.flush()
    assert flaky.posts == 3 and reporter.failures == 2
    assert reporter.accepted == 5
    assert counted(authz)[0]["count"] == 5
    await reporter.aclose()


async def test_retry_after_a_lost_ack_counts_nothing_twice(authz: AS) -> None:
    flaky = Flaky(authz.app, 1, lose_ack=True)
    reporter = reporter_for(authz, flaky, flush_interval=60)
    for i in range(7):
        await reporter.after(use(request_id=i), outcome())
    await reporter.flush()
    assert flaky.posts == 2
    assert (reporter.accepted, reporter.duplicates) == (0, 7)  # stored by the first POST, whose answer was lost
    assert counted(authz)[0]["count"] == 7
    await reporter.aclose()


async def test_unreachable_as_keeps_events_and_aclose_gives_up_after_max_attempts(
    authz: AS, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky(authz.app, 100)
    reporter = reporter_for(authz, flaky, flush_interval=60)
    await reporter.after(use(), outcome())
    with caplog.at_level(logging.ERROR):
        await reporter.aclose(max_attempts=3)
    assert flaky.posts == 3 and reporter.dropped == 1
    assert "unreported" in caplog.text


async def test_token_and_outcome_events(authz: AS) -> None:
    reporter = reporter_for(authz, flush_interval=60)
    request = RequestContext(token=use().token)
    with bind_request_context(request):
        record_tokens(provider="openai", model="gpt-4o", input_tokens=600, output_tokens=100)
        record_tokens(provider="openai", model="gpt-4o", input_tokens=400)
        record_outcome("resolved", 2)
        record_usage(calls=1)  # not a metering key: ignored
    assert tokens_by_model(request.usage) == {("openai", "gpt-4o"): {"input_tokens": 1000, "output_tokens": 100}}
    await reporter.after(use(agent="agt_9"), UseOutcome(status=200, duration=0.01, usage=request.usage))
    await reporter.aclose()
    rows = {r["type"]: r for r in counted(authz, group_by=["type", "model", "provider"])}
    assert set(rows) == {"call.completed", "tokens.consumed", "outcome.resolved"}
    assert rows["tokens.consumed"]["model"] == "gpt-4o" and rows["tokens.consumed"]["input_tokens"] == 1000
    assert rows["tokens.consumed"]["cost_usd"] is not None
    assert rows["outcome.resolved"]["quantity"] == 2


async def test_outcomes_with_an_id_value_and_attributes(authz: AS) -> None:
    """Billing's outcome call: the outcome_id is the event id (reported twice, counted once); value and
    attributes land in the event's metadata; a reversal is a compensating event."""
    reporter = reporter_for(authz, flush_interval=60)
    for _ in range(2):
        request = RequestContext(token=use().token)
        with bind_request_context(request):
            record_outcome("meeting_booked", outcome_id="mtg-7", value="250.00", attributes={"qualified": True})
        await reporter.after(use(agent="agt_9"), UseOutcome(status=200, duration=0.01, usage=request.usage))
    request = RequestContext(token=use().token)
    with bind_request_context(request):
        record_outcome("meeting_booked", -1, outcome_id="mtg-7:reversal", attributes={"reverses": "mtg-7"})
    events = reporter.events_for(use(agent="agt_9"), UseOutcome(status=200, duration=0.01, usage=request.usage))
    assert events[1] == {**events[1], "id": "mtg-7:reversal", "quantity": -1, "metadata": {"reverses": "mtg-7"}}
    reporter._enqueue(events)
    await reporter.aclose()
    assert reporter.accepted == 5 and reporter.duplicates == 1  # 3 calls, the booking and its reversal; mtg-7 again
    rows = {r["type"]: r for r in counted(authz, group_by=["type"])}
    assert rows["outcome.meeting_booked"]["quantity"] == 0 and rows["outcome.meeting_booked"]["count"] == 2


async def test_plain_token_counts_use_the_default_model(authz: AS) -> None:
    reporter = reporter_for(authz, flush_interval=60, default_provider="openai", default_model="gpt-4o")
    await reporter.after(use(), outcome(input_tokens=10, output_tokens=5))
    await reporter.aclose()
    rows = {r["type"]: r for r in counted(authz, group_by=["type"])}
    assert rows["tokens.consumed"]["output_tokens"] == 5


async def test_after_never_raises_and_failed_requests_are_metered(authz: AS) -> None:
    reporter = reporter_for(authz, flush_interval=60)
    await reporter.after(use(tool=None), UseOutcome(status=None, duration=0.5, error=RuntimeError("x")))
    events = reporter.events_for(use(jti="j w/ space"), outcome(500))
    assert events[0]["status"] == "error" and " " not in events[0]["id"]
    await reporter.aclose()
    row = counted(authz, group_by=["tool"])[0]
    assert row["count"] == 1 and row["tool"] == ""


async def test_ids_are_unique_and_stable(authz: AS) -> None:
    reporter = reporter_for(authz)
    a = reporter.events_for(use(), outcome())
    b = reporter.events_for(use(), outcome())
    assert a[0]["id"] != b[0]["id"] and a[0]["id"].startswith("jti-1:")
    other = reporter_for(authz)
    assert other.events_for(use(), outcome())[0]["id"] != a[0]["id"]  # another process/instance
    await reporter.aclose()
    await other.aclose()


async def test_through_the_middleware_with_composite_hook(make_harness: Any, fake_as: FakeAS, authz: AS) -> None:
    class Budget:
        def __init__(self) -> None:
            self.refuse = False

        async def before(self, ctx: UseContext) -> Refusal | None:
            return Refusal.problem(429, "Budget exhausted") if self.refuse else None

        async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
            raise RuntimeError("budget settle failed")  # must not keep the reporter from seeing it

    async def tool_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        record_tokens(provider="anthropic", model="claude-sonnet-4-5", input_tokens=300, output_tokens=20)
        record_tokens(provider="anthropic", model="claude-sonnet-4-5", input_tokens=200, output_tokens=30)
        record_outcome("answered")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    budget = Budget()
    reporter = reporter_for(authz, flush_interval=60)
    h = make_harness(tool_app, hook=CompositeHook(budget, reporter))
    assert (await h.call(fake_as.mint(agent="agt_1"))).status_code == 200
    budget.refuse = True
    assert (await h.call(fake_as.mint(agent="agt_1"))).status_code == 429  # refused: not metered
    await reporter.aclose()
    rows = {r["type"]: r for r in counted(authz, group_by=["type", "agent"])}
    assert rows["call.completed"]["count"] == 1 and rows["call.completed"]["agent"] == "agt_1"
    assert (rows["tokens.consumed"]["input_tokens"], rows["tokens.consumed"]["output_tokens"]) == (500, 50)
    assert rows["outcome.answered"]["count"] == 1


async def test_lifespan_shutdown_flushes(authz: AS) -> None:
    reporter = reporter_for(authz, flush_interval=3600)
    await reporter.after(use(), outcome())
    sent: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await with_reporter_lifespan(inner, reporter)({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert reporter.accepted == 1


async def test_composite_hook_order_refusal_and_after_for_all() -> None:
    seen: list[str] = []

    class Hook:
        def __init__(self, name: str, refuse: bool = False, fail: bool = False) -> None:
            self.name, self.refuse, self.fail = name, refuse, fail

        async def before(self, ctx: UseContext) -> Refusal | None:
            seen.append(f"before:{self.name}")
            return Refusal(429) if self.refuse else None

        async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
            seen.append(f"after:{self.name}")
            if self.fail:
                raise RuntimeError(self.name)

    refusing = CompositeHook(Hook("a"), Hook("b", refuse=True), Hook("c"))
    refusal = await refusing.before(use())
    assert refusal is not None and refusal.status == 429
    assert seen == ["before:a", "before:b"]
    seen.clear()
    passing = CompositeHook(Hook("a", fail=True), Hook("b"))
    assert await passing.before(use()) is None
    await passing.after(use(), outcome())  # a's failure is logged, b still runs, nothing raised
    assert seen == ["before:a", "before:b", "after:a", "after:b"]
