"""The approval page: console sign-in, CSRF, role checks, strict CSP; the decision is an audit record."""

from __future__ import annotations

import hashlib

import pytest

from authz.compliance import ai_act, approvals
from tests.authz.compliance._helpers import audit_events, new_agent
from tests.authz.conftest import AS, RESOURCE
from tests.authz.console.conftest import ConsoleFactory, console_as, console_for

__all__ = ["console_as", "console_for"]
pytestmark = [pytest.mark.anyio, pytest.mark.requirement("euaiact:art14-human-approval")]


def pending(authz: AS) -> str:
    approvals.put_rule(authz.ctx, RESOURCE, "delete_file", actor="test")
    d = approvals.check(authz.ctx, agent=new_agent(authz, "cleaner"), resource=RESOURCE, tool="delete_file",
                        args_sha256=hashlib.sha256(b"x").hexdigest(), arguments='{"path":"/tmp/x"}')  # fmt: skip
    assert d.approval is not None
    return str(d.approval["id"])


async def test_signed_out_is_sent_to_sign_in(console_as: AS) -> None:
    approval_id = pending(console_as)
    r = await console_as.http.get(f"/console/approvals/{approval_id}")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    assert approval_id in r.headers["location"]
    r = await console_as.http.post(f"/console/approvals/{approval_id}", data={"decision": "approve"})
    assert r.status_code == 401
    assert approvals.get_approval(console_as.ctx, approval_id)[0]["status"] == "pending"


async def test_an_operator_approves_a_viewer_cannot(console_as: AS, console_for: ConsoleFactory) -> None:
    approval_id = pending(console_as)
    victor = await console_for("victor")
    page = await victor.get(f"/approvals/{approval_id}")
    assert page.status_code == 200 and "cleaner" in page.text and "/tmp/x" in page.text
    assert "does not allow deciding" in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (await victor.post(f"/approvals/{approval_id}", {"decision": "approve"})).status_code == 403
    olga = await console_for("olga")
    forged = await olga.http.post(f"/console/approvals/{approval_id}", data={"decision": "approve", "csrf_token": "x"})
    assert forged.status_code == 403
    assert approvals.get_approval(console_as.ctx, approval_id)[0]["status"] == "pending"
    r = await olga.post(f"/approvals/{approval_id}", {"decision": "approve", "reason": "ticket 7"})
    assert r.status_code == 303 and r.headers["location"].endswith(f"/console/approvals/{approval_id}?done=approved")
    shown = await olga.get(f"/approvals/{approval_id}?done=approved")
    assert "the agent may retry the call once" in shown.text and "<strong>approved</strong>" in shown.text
    record = audit_events(console_as, "approval.approved")[0]
    assert record["detail"]["actor"] == "console:olga" and record["reason"] == "ticket 7"
    assert record["detail"]["basis"] == "AI Act Art. 14(4)(d)"
    bad = await olga.post(f"/approvals/{approval_id}", {"decision": "maybe"})
    assert bad.status_code == 400
    assert (await olga.get("/approvals/apv_unknown")).status_code == 404


async def test_the_agent_page_shows_the_ai_act_record(console_as: AS, console_for: ConsoleFactory) -> None:
    agent = new_agent(console_as, "screener")
    victor = await console_for("victor")
    assert "authz ai-act set " + agent in (await victor.get(f"/agents/{agent}")).text
    record = {"risk": "high", "annex_iii_area": "employment", "intended_purpose": "screens CVs", "provider": "Acme",
              "deployer": "Beta"}  # fmt: skip
    ai_act.put_record(console_as.ctx, agent, record, actor="test")
    page = (await victor.get(f"/agents/{agent}")).text
    assert "<strong>high</strong> (Annex III: employment)" in page and "screens CVs" in page
