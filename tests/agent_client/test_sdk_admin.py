"""The Python admin SDK (:mod:`agent_client.sdk`) against a live ``authz serve`` subprocess.

Every surface method is called on the real server; a batch whose response is lost after the
server stored it is retried by the SDK and counted once; problems arrive as ``ApiError`` with the
RFC 9457 fields; ``Retry-After`` is read as seconds or an HTTP-date.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx2
import pytest

from agent_client.sdk import ApiError, AsyncClient, Client, RetryPolicy, prepare_events
from agent_client.sdk.retry import retry_after
from tests.agent_client.conftest import Live

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(live: Live) -> Iterator[Client]:
    server, token = live.server, live.token
    with Client(server.issuer, api_key=token, timeout=10) as c:
        yield c


def test_agents_and_credentials(client: Client) -> None:
    team = client.teams.create("sdk-team", description="made by the SDK test")
    assert team["name"] == "sdk-team"
    assert client.teams.get(team["id"])["id"] == team["id"]
    assert team["id"] in [t["id"] for t in client.teams.list()["items"]]

    agent = client.agents.create("sdk agent", team="sdk-team", tags=["sdk"], description="d")
    agent_id = agent["id"]
    assert agent["status"] == "active"
    assert client.agents.get(agent_id)["name"] == "sdk agent"
    assert [a["id"] for a in client.agents.list(tag="sdk")["items"]] == [agent_id]
    assert client.agents.update(agent_id, name="renamed")["name"] == "renamed"
    assert client.agents.suspend(agent_id, reason="test")["status"] == "suspended"
    assert client.agents.list(status="suspended", q="renamed")["items"][0]["id"] == agent_id
    assert client.agents.reinstate(agent_id)["status"] == "active"

    issued = client.agents.credentials.issue(agent_id)
    assert issued["secret"]
    listed = client.agents.credentials.list(agent_id)["items"]
    assert [c["id"] for c in listed] == [issued["id"]]
    assert "secret" not in listed[0]
    rotated = client.agents.credentials.rotate(agent_id, issued["id"], overlap_seconds=0)
    assert rotated["old"]["id"] == issued["id"] and rotated["new"]["secret"]
    revoked = client.agents.credentials.revoke(agent_id, rotated["new"]["id"], reason="done")
    assert revoked["id"] == rotated["new"]["id"]

    assert client.agents.revoke(agent_id, reason="end")["status"] == "revoked"
    with pytest.raises(ApiError) as err:
        client.agents.reinstate(agent_id)
    assert err.value.status == 409 and err.value.title and err.value.type


def test_problem_fields_on_validation_and_not_found(client: Client) -> None:
    with pytest.raises(ApiError) as err:
        client.agents.get("agt_does_not_exist")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        client.agents.create("")
    assert err.value.status == 422
    assert "name" in err.value.fields and err.value.detail
    with pytest.raises(ValueError, match="exactly one"):
        client.budgets.list()


def test_budgets(client: Client) -> None:
    agent_id = client.agents.create("budgeted")["id"]
    budget = client.budgets.create(agent=agent_id, call_limit=10, period="day", thresholds=[50])
    assert (budget["subject_id"], budget["metric"], budget["limit"]) == (agent_id, "calls", 10)
    assert [b["id"] for b in client.budgets.list(agent=agent_id)["items"]] == [budget["id"]]
    assert client.budgets.get(budget["id"])["period"] == "day"
    status = client.budgets.status(budget["id"])
    assert (status["spent"], status["remaining"]) == (0, 10)
    assert client.budgets.update(budget["id"], limit=20)["limit"] == 20
    client.budgets.delete(budget["id"])
    with pytest.raises(ApiError) as err:
        client.budgets.get(budget["id"])
    assert err.value.status == 404


def _calls(client: Client, agent: str) -> int:
    rows = client.metering.usage(granularity="day", group_by=["agent", "type"], filters={"agent": agent})["rows"]
    return sum(int(r["count"]) for r in rows if r["type"] == "call.completed")


def _settled_calls(client: Client, agent: str, expected: int) -> int:
    """The count once the server's aggregate flush has caught up (bounded wait), then re-read after more flushes."""
    for _ in range(100):
        if _calls(client, agent) >= expected:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # several more flush ticks: nothing is counted twice
    return _calls(client, agent)


def test_metering_record_and_usage(client: Client) -> None:
    first = client.metering.record("call.completed", agent="agt_meter_one", tool="search")
    assert first["accepted"] == 1 and first["duplicates"] == []
    out = client.metering.record("call.completed", agent="agt_meter_one", tool="search", id="evt-fixed-1")
    again = client.metering.record("call.completed", agent="agt_meter_one", tool="search", id="evt-fixed-1")
    assert out["accepted"] == 1
    assert again["accepted"] == 0 and again["duplicates"] == ["evt-fixed-1"]
    assert _settled_calls(client, "agt_meter_one", 2) == 2


class _LoseFirstResponse(httpx2.BaseTransport):
    """A real HTTP transport that, once, lets the server store the batch and then drops the answer."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.posts = 0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST":
            self.posts += 1
            if self.posts == 1:
                response.read()
                response.close()
                raise httpx2.ReadError("connection lost after the server answered", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_retried_batch_counts_once(live: Live, client: Client) -> None:
    server, token = live.server, live.token
    events = [{"type": "call.completed", "agent": "agt_batch", "tool": f"t{i}"} for i in range(5)]
    transport = _LoseFirstResponse()
    with Client(server.issuer, api_key=token, transport=transport, retry=RetryPolicy(base_delay=0.01)) as flaky:
        out = flaky.metering.record_batch(events)
    assert transport.posts == 2  # the lost answer was retried
    assert out["accepted"] == 0 and len(out["duplicates"]) == 5  # ... and the retry stored nothing new
    assert _settled_calls(client, "agt_batch", 5) == 5

    prepared = prepare_events(events)  # the caller's own retry with the same ids is deduplicated too
    assert client.metering.record_batch(prepared)["accepted"] == 5
    assert client.metering.record_batch(prepared)["duplicates"] == [e["id"] for e in prepared]
    assert _settled_calls(client, "agt_batch", 10) == 10


def test_non_idempotent_post_is_not_retried(live: Live) -> None:
    server, token = live.server, live.token
    transport = _LoseFirstResponse()
    with Client(server.issuer, api_key=token, transport=transport) as flaky, pytest.raises(ApiError) as err:
        flaky.agents.create("once only")
    assert transport.posts == 1 and err.value.status == 0


def test_policy_test_is_retried_as_declared_idempotent(live: Live) -> None:
    """``policies.test`` is a POST that changes nothing: declared idempotent, so a lost answer is retried."""
    transport = _LoseFirstResponse()
    retry = RetryPolicy(base_delay=0.01)
    with Client(live.server.issuer, api_key=live.token, transport=transport, retry=retry) as flaky:
        report = flaky.policies.test()
    assert transport.posts == 2 and report["results"]  # the lost answer was asked again
    post = httpx2.Request("POST", "http://x/policies/test")
    assert retry.should_retry(1, post, None, idempotent=True) and not retry.should_retry(1, post, None)


def test_budget_reserve_is_retried_and_held_once(live: Live, client: Client) -> None:
    """``budgets.reserve`` sends a ``request_id`` (generated when absent) that the server deduplicates
    by: declared idempotent, a lost answer is asked again and the estimate is held once."""
    budget = client.budgets.create(workflow="py-reserve-retry", call_limit=10, period="day")
    transport = _LoseFirstResponse()
    with Client(
        live.server.issuer, api_key=live.token, transport=transport, retry=RetryPolicy(base_delay=0.01)
    ) as flaky:
        held = flaky.budgets.reserve(workflow="py-reserve-retry", calls=1)
    assert transport.posts == 2 and held["reservation_id"] and budget["id"] in held["budgets"]
    assert client.budgets.status(budget["id"])["reserved"] == 1
    client.budgets.settle([{"reservation_id": held["reservation_id"], "release": True}])
    assert client.budgets.delete(budget["id"])


def test_policies_get_and_put(client: Client) -> None:
    with pytest.raises(ApiError) as missing:
        client.policies.get()
    assert missing.value.status == 404  # nothing stored yet: the embedded set is in force
    base = {"base.cedar": (ROOT / "policies" / "base.cedar").read_text()}
    first = client.policies.put(base, comment="first")
    assert first["active"] and first["sources"] == base
    active = client.policies.get()
    assert active["version"] == first["version"]
    stored = client.policies.put(
        active["sources"], schema=active["schema"], entities=active["entities"], comment="sdk round trip"
    )
    assert stored["version"] == active["version"] + 1 and stored["active"]
    assert stored["sha256"] == active["sha256"]
    assert client.policies.version(stored["version"])["comment"] == "sdk round trip"
    assert stored["version"] in [v["version"] for v in client.policies.versions()["items"]]
    with pytest.raises(ApiError) as err:
        client.policies.put({"bad.cedar": "permit(principal, action, resource"})
    assert err.value.status in (409, 422)


@pytest.mark.anyio
async def test_async_client(live: Live) -> None:
    server, token = live.server, live.token
    async with AsyncClient(server.issuer, api_key=token, timeout=10) as client:
        agent = await client.agents.create("async agent")
        assert (await client.agents.get(agent["id"]))["name"] == "async agent"
        out = await client.metering.record_batch([{"type": "call.completed", "agent": agent["id"]}])
        assert out["accepted"] == 1
        with pytest.raises(ApiError) as err:
            await client.teams.get("team_missing")
        assert err.value.status == 404


def test_unauthenticated_is_an_api_error(live: Live) -> None:
    server = live.server
    with Client(server.issuer, api_key="not-a-token") as bad, pytest.raises(ApiError) as err:
        bad.teams.list()
    assert err.value.status == 401


def test_retry_after_and_policy() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(formatdate(1_000_010, usegmt=True), now=1_000_000) == pytest.approx(10.0)
    assert retry_after("soon") is None and retry_after(None) is None
    policy = RetryPolicy(attempts=3, max_delay=5)
    get = httpx2.Request("GET", "http://x/")
    post = httpx2.Request("POST", "http://x/")
    keyed = httpx2.Request("POST", "http://x/", headers={"Idempotency-Key": "k"})
    busy = httpx2.Response(429, headers={"retry-after": "2"})
    assert policy.should_retry(1, get, busy) and policy.should_retry(1, keyed, None)
    assert not policy.should_retry(1, post, busy) and not policy.should_retry(3, get, busy)
    assert not policy.should_retry(1, get, httpx2.Response(400))
    assert policy.delay(1, busy) == 2.0
    assert policy.delay(1, httpx2.Response(503, headers={"retry-after": "60"})) == 5.0
