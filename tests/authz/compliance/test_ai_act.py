"""The per-agent AI Act record: validated (an Annex III area when high), every change audited with the
previous and new values; the admin API names bad fields (RFC 9457) and never claims conformity."""

from __future__ import annotations

import pytest

from authz.compliance import ai_act
from authz.identity.agents.errors import Invalid, NotFound
from tests.authz.compliance._helpers import admin_headers, audit_events, new_agent
from tests.authz.conftest import AS

pytestmark = [pytest.mark.anyio, pytest.mark.requirement("euaiact:agent-record")]
RECORD = {"risk": "limited", "intended_purpose": "answers HR questions", "provider": "Acme AI", "deployer": "Beta"}


async def test_record_is_validated_and_audited(authz: AS) -> None:
    agent = new_agent(authz)
    with pytest.raises(Invalid) as err:
        ai_act.put_record(authz.ctx, agent, {"risk": "high", "provider": ""}, actor="test")
    assert {f for f, _ in err.value.errors} == {"annex_iii_area", "intended_purpose", "provider", "deployer"}
    with pytest.raises(NotFound):
        ai_act.put_record(authz.ctx, "agt_nope", RECORD, actor="test")
    ai_act.put_record(authz.ctx, agent, RECORD, actor="test")
    high = ai_act.put_record(authz.ctx, agent, {**RECORD, "risk": "high", "annex_iii_area": "employment"}, actor="ops")
    assert high.risk == "high" and high.updated_by == "ops" and ai_act.risk_of(authz.ctx, agent) == "high"
    first, second = audit_events(authz, "ai_act.updated")
    assert first["resource"] == agent and "previous" not in first["detail"]  # created
    assert second["detail"]["changed"] == ["annex_iii_area", "risk"]
    assert second["detail"]["previous"]["risk"] == "limited" and second["detail"]["current"]["risk"] == "high"


async def test_admin_api(authz: AS) -> None:
    agent = new_agent(authz)
    h = await admin_headers(authz)
    assert (await authz.http.get(f"/api/v1/agents/{agent}/ai-act", headers=h)).status_code == 404
    bad = await authz.http.put(f"/api/v1/agents/{agent}/ai-act", json={**RECORD, "risk": "high"}, headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["annex_iii_area"]
    ok = await authz.http.put(f"/api/v1/agents/{agent}/ai-act", json=RECORD, headers=h)
    assert ok.status_code == 200 and ok.json()["risk"] == "limited"
    got = (await authz.http.get(f"/api/v1/agents/{agent}/ai-act", headers=h)).json()
    assert "not a conformity assessment" in got["note"] and "Articles 12/19/26(6)" in got["note"]
    missing = await authz.http.put("/api/v1/agents/agt_nope/ai-act", json=RECORD, headers=h)
    assert missing.status_code == 404
