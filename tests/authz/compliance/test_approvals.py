"""Human oversight on the AS: rules, the check a resource server makes (single use, bound to agent +
resource + tool + arguments digest, expiring), decisions and overrides, every step an audit record."""

from __future__ import annotations

import hashlib
import time

import pytest
import sqlalchemy as sa

from authz.compliance import ai_act, approvals
from authz.identity.agents.errors import Conflict, Invalid
from authz.storage.models.compliance_governance import Approval
from tests.authz.compliance._helpers import admin_headers, audit_events, new_agent
from tests.authz.conftest import AS, OTHER_RESOURCE, RESOURCE

pytestmark = [pytest.mark.anyio, pytest.mark.requirement("euaiact:art14-human-approval")]
A, B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()


def check(authz: AS, agent: str, digest: str = A, tool: str = "delete_file") -> approvals.Decision:
    return approvals.check(authz.ctx, agent=agent, resource=RESOURCE, tool=tool, args_sha256=digest, arguments="{}")


async def test_an_approved_call_passes_exactly_once(authz: AS) -> None:
    agent = new_agent(authz)
    assert check(authz, agent).decision == "allow"  # no rule yet
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    assert check(authz, agent, tool="read_file").decision == "allow"  # another tool
    first = check(authz, agent)
    assert first.decision == "approval_required" and first.approval is not None
    assert first.url == authz.settings.issuer + "/console/approvals/" + first.approval["id"]
    again = check(authz, agent)
    assert again.approval is not None and again.approval["id"] == first.approval["id"]  # the pending one, reused
    approvals.decide(authz.ctx, first.approval["id"], True, actor="console:alice", reason="looks fine")
    assert check(authz, agent, digest=B).decision == "approval_required"  # other arguments: not covered
    other = approvals.check(authz.ctx, agent=new_agent(authz, "other"), resource=RESOURCE, tool="delete_file",
                            args_sha256=A)  # fmt: skip
    assert other.decision == "approval_required"  # another agent: not covered
    assert check(authz, agent).decision == "allow"
    retry = check(authz, agent)
    assert retry.decision == "approval_required" and retry.approval is not None
    assert retry.approval["id"] != first.approval["id"]  # used up: a new request
    events = [e["event"] for e in audit_events(authz, "approval.")]
    assert events == ["approval.requested", "approval.approved", "approval.requested", "approval.requested",
                      "approval.used", "approval.requested"]  # fmt: skip
    used = next(e for e in audit_events(authz, "approval.used"))
    assert used["client_id"] == agent and used["detail"]["arguments_sha256"] == A
    assert all("arguments" not in e["detail"] for e in audit_events(authz, "approval."))


async def test_a_rejection_is_refused_once_then_a_new_request(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    pending = check(authz, agent).approval
    assert pending is not None
    approvals.decide(authz.ctx, pending["id"], False, actor="console:alice", reason="not today")
    refused = check(authz, agent)
    assert refused.decision == "rejected" and refused.approval is not None
    assert refused.approval["decided_by"] == "console:alice" and refused.approval["reason"] == "not today"
    assert check(authz, agent).decision == "approval_required"
    with pytest.raises(Conflict):  # told to the agent: closed
        approvals.decide(authz.ctx, pending["id"], True, actor="console:alice")
    assert [e["event"] for e in audit_events(authz, "approval.rejected")] == ["approval.rejected"]


async def test_overrides_and_expiry_are_records(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", ttl=60, actor="test")
    pending = check(authz, agent).approval
    assert pending is not None
    approvals.decide(authz.ctx, pending["id"], True, actor="console:alice")
    approvals.decide(authz.ctx, pending["id"], False, actor="console:olga", reason="changed my mind")
    assert check(authz, agent).decision == "rejected"
    overridden = audit_events(authz, "approval.overridden")
    assert len(overridden) == 1 and overridden[0]["detail"]["previous"] == "approved"
    late = check(authz, agent).approval
    assert late is not None
    with authz.ctx.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.update(Approval).where(Approval.id == late["id"]).values(expires_at=int(time.time()) - 1))
    assert approvals.expire_due(authz.ctx) == 1
    assert approvals.get_approval(authz.ctx, late["id"])[0]["status"] == "expired"
    assert [e["detail"]["approval"] for e in audit_events(authz, "approval.expired")] == [late["id"]]
    with pytest.raises(Conflict):
        approvals.decide(authz.ctx, late["id"], True, actor="console:alice")


async def test_a_rule_can_apply_only_from_a_risk_level(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", min_risk="high", actor="test")
    assert check(authz, agent).decision == "allow"  # no AI Act record: not high
    record = {"risk": "limited", "intended_purpose": "triage", "provider": "Acme", "deployer": "Beta"}
    ai_act.put_record(authz.ctx, agent, record, actor="test")
    assert check(authz, agent).decision == "allow"
    ai_act.put_record(authz.ctx, agent, {**record, "risk": "high", "annex_iii_area": "employment"}, actor="test")
    assert check(authz, agent).decision == "approval_required"


async def test_rules_name_a_registered_resource_and_are_audited(authz: AS) -> None:
    with pytest.raises(Invalid) as err:
        approvals.put_rule(authz.ctx, "https://nowhere.example/mcp", "", min_risk="extreme", ttl=1, actor="test")
    assert {f for f, _ in err.value.errors} == {"resource", "tool", "min_risk", "ttl"}
    rule = approvals.put_rule(authz.ctx, OTHER_RESOURCE, "x", actor="test")
    assert (
        approvals.gated_tools(authz.ctx, OTHER_RESOURCE) == ["x"] and approvals.gated_tools(authz.ctx, RESOURCE) == []
    )
    approvals.delete_rule(authz.ctx, rule["id"], actor="test")
    assert approvals.gated_tools(authz.ctx, OTHER_RESOURCE) == []
    assert [e["event"] for e in audit_events(authz, "approval_rule.")] == ["approval_rule.set", "approval_rule.deleted"]


async def test_admin_api(authz: AS) -> None:
    agent = new_agent(authz)
    h = await admin_headers(authz)
    bad = await authz.http.post("/api/v1/oversight/rules", json={"resource": "nope", "tool": "t"}, headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "resource" in bad.text
    r = await authz.http.post("/api/v1/oversight/rules", json={"resource": RESOURCE, "tool": "delete_file"}, headers=h)
    assert r.status_code == 200, r.text
    listed = await authz.http.get("/api/v1/oversight/rules", headers=h)
    assert [x["tool"] for x in listed.json()["rules"]] == ["delete_file"]
    body = {"agent": agent, "resource": RESOURCE, "tool": "delete_file", "arguments_sha256": A}
    assert (await authz.http.post("/api/v1/oversight/check", json=body, headers=h)).status_code == 403
    rs = await admin_headers(authz, "approvals:check", name="mcp")
    gated = await authz.http.get("/api/v1/oversight/gated", params={"resource": RESOURCE}, headers=rs)
    assert gated.json()["tools"] == ["delete_file"]
    c = (await authz.http.post("/api/v1/oversight/check", json=body, headers=rs)).json()
    assert c["decision"] == "approval_required" and c["url"].endswith(c["approval_id"])
    bad_digest = await authz.http.post("/api/v1/oversight/check", json={**body, "arguments_sha256": "x"}, headers=rs)
    assert bad_digest.status_code == 422
    pending = (await authz.http.get("/api/v1/oversight/approvals", params={"status": "pending"}, headers=h)).json()
    assert [a["id"] for a in pending["approvals"]] == [c["approval_id"]]
    d = await authz.http.post(f"/api/v1/oversight/approvals/{c['approval_id']}/decision",
                              json={"decision": "approve"}, headers=h)  # fmt: skip
    assert d.status_code == 200 and d.json()["status"] == "approved"
    assert (await authz.http.post("/api/v1/oversight/check", json=body, headers=rs)).json()["decision"] == "allow"
    missing = await authz.http.post("/api/v1/oversight/approvals/apv_nope/decision", json={"decision": "approve"},
                                    headers=h)  # fmt: skip
    assert missing.status_code == 404


async def test_a_flood_of_distinct_calls_is_throttled(authz: AS) -> None:
    agent = new_agent(authz)
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(approvals.MAX_PENDING + 3)]
    answers = [check(authz, agent, digest=d).decision for d in digests]
    assert answers == ["approval_required"] * approvals.MAX_PENDING + ["throttled"] * 3
    assert len(approvals.list_approvals(authz.ctx, "pending")) == approvals.MAX_PENDING
    assert check(authz, agent, digest=digests[0]).decision == "approval_required"  # a waiting one is still answered
    assert check(authz, new_agent(authz, "other")).decision == "approval_required"  # per agent
    throttled = audit_events(authz, "approval.throttled")
    assert {e["outcome"] for e in throttled} == {"failure"}
    assert sum(e["detail"].get("count", 1) for e in throttled) == 3  # repeats folded with a count, none dropped
