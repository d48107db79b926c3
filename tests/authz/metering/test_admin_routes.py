"""``POST /api/v1/metering/events`` and ``GET /api/v1/metering/usage`` through the real app (in process)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authz.admin.bootstrap import admin_resource_uri, create_admin_client
from tests.authz.conftest import AS
from tests.authz.metering.conftest import event, tokens

pytestmark = pytest.mark.anyio

EVENTS = "/api/v1/metering/events"
USAGE = "/api/v1/metering/usage"


async def token_for(srv: AS, scopes: str) -> dict[str, str]:
    reg = create_admin_client(srv.ctx.store, srv.ctx.keyring, srv.settings, name="meter", scopes=scopes.split())
    assert reg.client_secret
    r = await srv.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": admin_resource_uri(srv.settings), "scope": scopes},
        auth=(reg.client_id, reg.client_secret),
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def meter(authz: AS) -> tuple[AS, dict[str, str]]:
    return authz, await token_for(authz, "metering:write metering:read")


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _usage(srv: AS, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    srv.ctx.metering.flush()  # type: ignore[union-attr]
    r = await srv.http.get(USAGE, params=params, headers=headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["rows"]
    return rows


async def test_same_batch_twice_counts_once(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    now = _now_ms()
    batch = {"events": [event(f"e{i}", now, tool="add") for i in range(5)] + [tokens("t1", now)]}
    first = await srv.http.post(EVENTS, json=batch, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 6, "duplicates": [], "rejected": []}
    assert first.headers["cache-control"] == "no-store"
    again = await srv.http.post(EVENTS, json=batch, headers=headers)
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": [f"e{i}" for i in range(5)] + ["t1"], "rejected": []}
    rows = await _usage(srv, headers, group_by="type,tool", granularity="day")
    by_type = {r["type"]: r for r in rows}
    assert by_type["call.completed"]["count"] == 5 and by_type["call.completed"]["tool"] == "add"
    assert by_type["tokens.consumed"]["count"] == 1
    assert by_type["tokens.consumed"]["input_tokens"] == 1000
    assert by_type["tokens.consumed"]["cost_usd"] is not None


async def test_single_event_object(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    r = await srv.http.post(EVENTS, json=event("solo", _now_ms()), headers=headers)
    assert r.json() == {"accepted": 1, "duplicates": [], "rejected": []}
    rows = await _usage(srv, headers, group_by="agent")
    assert [(x["agent"], x["count"]) for x in rows] == [("agt_1", 1)]


async def test_invalid_events_get_precise_errors_and_valid_ones_land(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    now = _now_ms()
    batch = {
        "events": [
            event("ok-1", now),
            event("bad-type", now, type="nope"),
            event("bad-field", now, colour="blue"),
            "not an object",
            event("ok-2", now, latency_ms=12),
            event("old", now - 3 * 24 * 3600 * 1000),
        ]
    }
    r = await srv.http.post(EVENTS, json=batch, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["duplicates"] == []
    rejected = {e["index"]: e for e in body["rejected"]}
    assert set(rejected) == {1, 2, 3, 5}
    assert rejected[1]["field"] == "type" and rejected[1]["id"] == "bad-type"
    assert rejected[2]["field"] == "colour"
    assert rejected[5]["field"] == "timestamp"
    assert all(e["message"] for e in body["rejected"])
    rows = await _usage(srv, headers)
    assert sum(x["count"] for x in rows) == 2


async def test_scopes(authz: AS) -> None:
    read_only = await token_for(authz, "metering:read")
    r = await authz.http.post(EVENTS, json=event("x", _now_ms()), headers=read_only)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert 'scope="metering:write"' in r.headers["www-authenticate"]
    write_only = await token_for(authz, "metering:write")
    assert (await authz.http.post(EVENTS, json=event("x", _now_ms()), headers=write_only)).status_code == 200
    r = await authz.http.get(USAGE, headers=write_only)
    assert r.status_code == 403 and 'scope="metering:read"' in r.headers["www-authenticate"]
    assert (await authz.http.get(USAGE, headers=read_only)).status_code == 200
    assert (await authz.http.post(EVENTS, json=event("y", _now_ms()))).status_code == 401
    admin = await token_for(authz, "admin:read admin:write")
    assert (await authz.http.post(EVENTS, json=event("z", _now_ms()), headers=admin)).status_code == 403


async def test_too_many_events_is_413(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    now = _now_ms()
    r = await srv.http.post(EVENTS, json={"events": [event(str(i), now) for i in range(1001)]}, headers=headers)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413
    assert srv.ctx.metering is not None and srv.ctx.metering.pending() == 0


async def test_bad_bodies_and_queries(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    r = await srv.http.post(EVENTS, json={"events": "x"}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events"
    r = await srv.http.post(EVENTS, json=[event("a", _now_ms())], headers=headers)
    assert r.status_code == 422
    r = await srv.http.post(EVENTS, json={"events": []}, headers=headers)
    assert r.json() == {"accepted": 0, "duplicates": [], "rejected": []}
    for params in ({"granularity": "week"}, {"group_by": "colour"}, {"filter": "colour=x"}, {"from": "yesterday"}):
        r = await srv.http.get(USAGE, params=params, headers=headers)
        assert r.status_code == 422, params
        assert r.headers["content-type"] == "application/problem+json"


async def test_a_lone_surrogate_is_refused_as_before_and_stores_nothing(meter: tuple[AS, dict[str, str]]) -> None:
    """The route takes the parsed body as it is, except where pydantic's JSON parser refused more."""
    srv, headers = meter
    body = '{"events": [{"id": "s1", "type": "call.completed", "timestamp": "%s", "agent": "\\ud800"}]}'
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    r = await srv.http.post(
        EVENTS, content=(body % stamp).encode(), headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert srv.ctx.metering is not None and srv.ctx.metering.pending() == 0
    r = await srv.http.post(EVENTS, json={"events": [event("s2", _now_ms())]}, headers=headers)
    assert r.json() == {"accepted": 1, "duplicates": [], "rejected": []}


async def test_usage_range_granularity_and_filters(meter: tuple[AS, dict[str, str]]) -> None:
    srv, headers = meter
    now = _now_ms()
    batch = [event(f"a{i}", now, team="t1", tool="add") for i in range(3)]
    batch += [event(f"b{i}", now, team="t2", tool="whoami") for i in range(2)]
    r = await srv.http.post(EVENTS, json={"events": batch}, headers=headers)
    assert r.json()["accepted"] == 5
    rows = await _usage(srv, headers, group_by="team", filter="team=t1", granularity="month")
    assert [(x["team"], x["count"]) for x in rows] == [("t1", 3)]
    rows = await _usage(srv, headers, group_by="tool,team")
    assert {(x["tool"], x["team"], x["count"]) for x in rows} == {("add", "t1", 3), ("whoami", "t2", 2)}
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000 - 3 * 86400))
    rows = await _usage(srv, headers, **{"from": day, "to": day + "T01:00:00Z"})
    assert rows == []


async def test_openapi_documents_both_routes(authz: AS) -> None:
    doc = (await authz.http.get("/api/v1/openapi.json")).json()
    post = doc["paths"]["/metering/events"]["post"]
    assert post["security"] == [{"oauth2": ["metering:write"]}]
    assert {"200", "401", "403", "413", "415", "422"} <= post["responses"].keys()
    assert "oneOf" in post["requestBody"]["content"]["application/json"]["schema"]
    get = doc["paths"]["/metering/usage"]["get"]
    assert get["security"] == [{"oauth2": ["metering:read"]}]
    assert {p["name"] for p in get["parameters"]} == {"from", "to", "granularity", "group_by", "filter"}
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/UsageOut"}


async def test_a_full_batch_of_1000_events_fits_in_one_request(meter: tuple[AS, dict[str, str]]) -> None:
    """The admin API's default body limit is 64 KiB; the events route takes a whole 1,000-event batch."""
    srv, headers = meter
    now = _now_ms()
    batch = {"events": [event(f"full-{i}", now, tool="add", metadata={"note": "x" * 100}) for i in range(1000)]}
    r = await srv.http.post(EVENTS, json=batch, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1000


async def test_token_events_settle_token_and_cost_budgets_once(meter: tuple[AS, dict[str, str]]) -> None:
    """Metering with budgets: ``tokens.consumed`` events charge the agent's token budget and the team's
    USD cost budget (exactly the priced cost, rounded up to the micro-dollar), and a replayed batch
    charges nothing more; a spent hard token budget then refuses new tokens."""
    srv, headers = meter
    svc = srv.ctx.budgets
    assert svc is not None
    tok, _ = svc.store.create("agent", "agt_1", metric="tokens", limit=2500, period="day", hard=True)
    cost, _ = svc.store.create("team", "team_b", metric="cost", limit=10**9, currency="USD", period="day")
    svc.invalidate()
    now = _now_ms()
    batch = {"events": [tokens(f"b{i}", now, team="team_b") for i in range(2)] + [event("c1", now)]}
    for _ in range(2):
        r = await srv.http.post(EVENTS, json=batch, headers=headers)
        assert r.status_code == 200 and not r.json()["rejected"], r.text
        srv.ctx.metering.flush()  # type: ignore[union-attr]
    assert svc.status(tok).spent == 2 * 1100  # input + output tokens, once
    rows = await _usage(srv, headers, group_by="team", granularity="day")
    priced_pusd = sum(int(row["cost_pusd"]) for row in rows if row["team"] == "team_b")
    assert priced_pusd > 0
    assert svc.status(cost).spent == -(-priced_pusd // 1_000_000)
    r = await srv.http.post(EVENTS, json={"events": [tokens("b3", now, team="team_b")]}, headers=headers)
    assert r.json()["accepted"] == 1
    srv.ctx.metering.flush()  # type: ignore[union-attr]
    assert svc.status(tok).spent == 3300  # past the cap: the tokens were consumed, so they count
    assert svc.check_issuance("agt_1", "team_b", None) is not None
