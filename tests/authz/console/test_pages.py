"""Every console page renders for a signed-in viewer, with the strict headers, and only after sign-in."""

from __future__ import annotations

import pytest

from authz.identity.agents.lifecycle import Agents, create_agent
from tests.authz.conftest import AS
from tests.authz.console.conftest import ConsoleFactory, sign_in

pytestmark = pytest.mark.anyio
PAGES = [
    "/",
    "/agents",
    "/servers",
    "/policies",
    "/budgets",
    "/usage",
    "/audit",
    "/usage?by=model&metric=cost&range=24h",
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
