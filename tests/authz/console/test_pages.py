"""Every console page renders for a signed-in viewer, with the strict headers, and only after sign-in."""

from __future__ import annotations

import pytest

from authz.identity.agents.lifecycle import Agents, create_agent
from tests.authz.conftest import AS, RESOURCE
from tests.authz.console.conftest import ConsoleFactory, sign_in

pytestmark = pytest.mark.anyio
PAGES = [
    "/licenses",
    "/",
    "/agents",
    "/servers",
    "/policies",
    "/budgets",
    "/usage",
    "/audit",
    "/usage?by=model&metric=cost&range=24h",
    "/billing",
    "/billing/plans",
    "/billing/invoices",
]


async def test_signed_out_is_sent_to_sign_in(console_as: AS) -> None:
    r = await console_as.http.get("/console/agents")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=")


async def test_every_page_renders_with_strict_headers(console_for: ConsoleFactory) -> None:
    c = await console_for("victor")
    agent = create_agent(Agents.from_context(c.authz.ctx), name="bot-1", actor="test")
    for path in [*PAGES, f"/agents/{agent.id}", f"/agents/{agent.id}/suspend"]:
        r = await c.get(path)
        assert r.status_code == 200, (path, r.text[:800])
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert "victor" in r.text


async def test_user_without_role_gets_no_console(console_as: AS) -> None:
    r = await sign_in(console_as, "nadia")
    assert r.status_code == 403
    assert "no console role" in r.text
    r = await console_as.http.get("/console/")
    assert r.status_code == 303


async def test_no_secret_or_token_on_any_page_or_response(console_for: ConsoleFactory) -> None:
    """Secrets (agent, resource server, admin client) and a live access token exist; no console answer
    (pages, confirmations, the live-count partial, the export, errors) contains any of them."""
    from authz.admin.bootstrap import create_admin_client
    from authz.identity.agents import credentials as creds

    c = await console_for("alice")
    ctx = c.authz.ctx
    agent = create_agent(Agents.from_context(ctx), name="bot-secret", actor="test")
    issued = creds.issue_credential(Agents.from_context(ctx), agent.id, kind="secret", actor="test")
    admin = create_admin_client(ctx.store, ctx.keyring, ctx.settings, name="x", scopes=["admin:read"])
    t = await c.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE, "scope": "tools:read"},
        auth=(agent.id, issued.secret or ""),
    )
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    secrets = [issued.secret, c.authz.rs.client_secret, admin.client_secret, token]
    assert all(secrets)
    cred = issued.credential.id
    a = f"/agents/{agent.id}"
    paths = [*PAGES, a, f"{a}/suspend", f"{a}/credentials/{cred}/rotate", "/audit/export", "/audit?event=token.",
             "/agents/nope", "/policies/versions/99"]  # fmt: skip
    ctx.audit.flush()
    for path in paths:
        r = await c.get(path)
        body = r.text + str(r.headers)
        assert not [s for s in secrets if s and s in body], path
        assert "eyJ" not in body, path
    live = await c.get(f"/agents/{agent.id}/live", headers={"hx-request": "true"})
    assert live.status_code == 200 and ">1<" in live.text and token not in live.text
    r = await c.post(f"/agents/{agent.id}/credentials/{cred}/rotate")
    assert r.status_code == 400 and issued.secret not in r.text
