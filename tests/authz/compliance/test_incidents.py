"""Incidents (AI Act Art. 73): the 15 / 10 / 2-day clock from awareness, the deadline shown, updates
and closing audited, bad fields named; the admin API answers RFC 9457 problems."""

from __future__ import annotations

import time

import pytest

from authz.compliance import incidents
from authz.identity.agents.errors import Conflict, Invalid
from tests.authz.compliance._helpers import admin_headers, audit_events, new_agent
from tests.authz.conftest import AS

pytestmark = [pytest.mark.anyio, pytest.mark.requirement("euaiact:art73-incident-clock")]
DAY = 86_400


async def test_the_clock_follows_the_kind(authz: AS) -> None:
    agent = new_agent(authz)
    aware = int(time.time()) - 3 * DAY
    row = incidents.open_incident(authz.ctx, title="Wrong refunds", agents=[agent], seq_from=1, seq_to=5,
                                  aware_at=aware, actor="test")  # fmt: skip
    assert row["deadline"] == aware + 15 * DAY and row["reporting_days"] == 15 and not row["overdue"]
    assert 11 * DAY < row["seconds_left"] <= 12 * DAY
    row = incidents.update_incident(authz.ctx, row["id"], {"kind": "death"}, actor="test")
    assert row["deadline"] == aware + 10 * DAY
    row = incidents.update_incident(authz.ctx, row["id"], {"kind": "critical-infrastructure"}, actor="test")
    assert row["deadline"] == aware + 2 * DAY and row["overdue"] and row["seconds_left"] < 0
    row = incidents.update_incident(authz.ctx, row["id"], {"reported_at": int(time.time())}, actor="test")
    assert row["seconds_left"] is None and not row["overdue"]
    closed = incidents.close_incident(authz.ctx, row["id"], actor="test", resolution="model rolled back")
    assert closed["status"] == "closed"
    with pytest.raises(Conflict):
        incidents.update_incident(authz.ctx, row["id"], {"title": "x"}, actor="test")
    events = [(e["event"], e["resource"]) for e in audit_events(authz, "incident.")]
    assert events == [("incident.opened", row["id"])] + [("incident.updated", row["id"])] * 3 + [
        ("incident.closed", row["id"])
    ]
    assert audit_events(authz, "incident.updated")[0]["detail"]["changed"] == ["kind"]
    assert incidents.CLOCK_DAYS == {"serious": 15, "death": 10, "widespread": 2, "critical-infrastructure": 2}


async def test_bad_fields_are_named(authz: AS) -> None:
    with pytest.raises(Invalid) as err:
        incidents.open_incident(authz.ctx, title="", kind="minor", agents=["agt_nope"], seq_from=9, seq_to=3,
                                aware_at=int(time.time()) + DAY, actor="test")  # fmt: skip
    assert {f for f, _ in err.value.errors} == {"title", "kind", "agents.0", "seq_to", "aware_at"}
    assert audit_events(authz, "incident.") == []


async def test_admin_api(authz: AS) -> None:
    h = await admin_headers(authz)
    bad = await authz.http.post("/api/v1/incidents", json={"title": "t", "kind": "minor"}, headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json" and "kind" in bad.text
    r = await authz.http.post("/api/v1/incidents", json={"title": "Leak", "kind": "widespread"}, headers=h)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["reporting_days"] == 2 and inc["deadline"] == inc["aware_at"] + 2 * DAY
    p = await authz.http.patch(f"/api/v1/incidents/{inc['id']}", json={"seq_from": 1, "seq_to": 2}, headers=h)
    assert p.status_code == 200 and p.json()["seq_to"] == 2
    inverted = await authz.http.patch(f"/api/v1/incidents/{inc['id']}", json={"seq_from": 5}, headers=h)
    assert inverted.status_code == 422 and "seq_to" in inverted.text
    listed = await authz.http.get("/api/v1/incidents", params={"status": "open"}, headers=h)
    assert [x["id"] for x in listed.json()["incidents"]] == [inc["id"]]
    c = await authz.http.post(f"/api/v1/incidents/{inc['id']}/close", headers=h)
    assert c.status_code == 200 and c.json()["status"] == "closed"
    again = await authz.http.post(f"/api/v1/incidents/{inc['id']}/close", headers=h)
    assert again.status_code == 409
    assert (await authz.http.get("/api/v1/incidents/inc_nope", headers=h)).status_code == 404
