"""The token-use hook: before() may refuse; after() sees status, duration and usage."""

import json

import pytest
from starlette.types import Receive, Scope, Send

from resource_server import Refusal, UseContext, UseOutcome, current_token, record_usage
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio


class RecordingHook:
    def __init__(self, refusal: Refusal | None = None) -> None:
        self.refusal = refusal
        self.before_calls: list[UseContext] = []
        self.after_calls: list[tuple[UseContext, UseOutcome]] = []

    async def before(self, ctx: UseContext) -> Refusal | None:
        self.before_calls.append(ctx)
        return self.refusal

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        self.after_calls.append((ctx, outcome))


async def metering_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    assert current_token().subject == "user-1"
    record_usage(tokens_in=120, tokens_out=30)
    record_usage(tokens_in=5)
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_before_refusal_is_sent_as_is(make_harness, fake_as: FakeAS) -> None:
    refusal = Refusal.problem(
        429, "Budget exhausted", detail="daily budget spent", type_="https://authz.test/problems/budget", retry_after=30
    )
    hook = RecordingHook(refusal)
    h = make_harness(metering_app, hook=hook)
    r = await h.call(fake_as.mint())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "30"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://authz.test/problems/budget",
        "title": "Budget exhausted",
        "status": 429,
        "detail": "daily budget spent",
    }
    assert hook.after_calls == []  # the app never ran


async def test_before_sees_the_operation_and_after_sees_the_outcome(make_harness, fake_as: FakeAS) -> None:
    hook = RecordingHook()
    h = make_harness(metering_app, hook=hook)
    body = {"jsonrpc": "2.0", "id": "req-9", "method": "tools/call", "params": {"name": "add", "arguments": {}}}
    r = await h.call(fake_as.mint(agent="agent-7", team="team-a", workflow="wf-1"), body)
    assert r.status_code == 202
    [ctx] = hook.before_calls
    assert (ctx.method, ctx.tool, ctx.request_id) == ("tools/call", "add", "req-9")
    assert ctx.token.agent == "agent-7" and ctx.token.team == "team-a" and ctx.token.workflow == "wf-1"
    assert ctx.required_scopes == frozenset({"tools:read"})
    [(after_ctx, outcome)] = hook.after_calls
    assert after_ctx is ctx
    assert outcome.status == 202
    assert outcome.duration >= 0
    assert dict(outcome.usage) == {"tokens_in": 125, "tokens_out": 30}
    assert outcome.error is None


async def test_hook_not_called_for_rejected_requests(make_harness, fake_as: FakeAS) -> None:
    hook = RecordingHook()
    h = make_harness(metering_app, hook=hook)
    await h.call(None)
    await h.call("garbage")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin_reset"}}
    assert (await h.call(fake_as.mint(), body)).status_code == 403
    assert hook.before_calls == [] and hook.after_calls == []


async def test_after_is_called_when_the_app_fails(make_harness, fake_as: FakeAS) -> None:
    hook = RecordingHook()

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    h = make_harness(failing, hook=hook)
    with pytest.raises(RuntimeError):
        await h.call(fake_as.mint())
    [(_, outcome)] = hook.after_calls
    assert outcome.status is None and isinstance(outcome.error, RuntimeError)


async def test_failing_before_hook_fails_closed(make_harness, fake_as: FakeAS) -> None:
    class Broken(RecordingHook):
        async def before(self, ctx: UseContext) -> Refusal | None:
            raise RuntimeError("ledger down")

    h = make_harness(metering_app, hook=Broken())
    r = await h.call(fake_as.mint())
    assert r.status_code == 503
    assert json.loads(r.text)["error"] == "temporarily_unavailable"
