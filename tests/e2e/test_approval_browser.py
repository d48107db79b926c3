"""Human approval of a tool call, end to end: the official MCP SDK client, a real MCP server behind our
middleware with ``ApprovalHook``, ``authz serve``, and headless Chromium where a person approves.

The agent calls ``write_note`` (gated by ``authz oversight require``): the SDK raises the -32042 URL
elicitation error naming the approval page; alice signs in on the AS and approves; the retry passes;
a second identical retry needs a new approval; alice rejects that one and the retry is refused with
a clear message. The approval page is screenshotted, checked by axe-core and for CSP violations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError
from playwright.sync_api import Page, sync_playwright

from tests.e2e._axe import axe_source, serious_violations
from tests.e2e._processes import Processes, add_resource, add_user, base_env, parse_fields, processes, wait_http
from tests.e2e.conftest import CHROMIUM_ARGS, missing

__all__ = ["processes"]
pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.requirement("euaiact:art14-human-approval")]
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 15_000

SERVER = """
import os, sys, uvicorn
from resource_server.approval import ApprovalHook
from resource_server.demo import DEMO_SCOPES, build_app
from resource_server.settings import ResourceServerConfig
issuer, port = sys.argv[1], int(sys.argv[2])
resource = f"http://127.0.0.1:{port}/mcp"
config = ResourceServerConfig(resource=resource, issuer=issuer, mode="jwt", scope_policy=DEMO_SCOPES)
hook = ApprovalHook(issuer, resource, os.environ["RS_APPROVAL_CLIENT_ID"], os.environ["RS_APPROVAL_CLIENT_SECRET"])
uvicorn.run(build_app(config, hook=hook), host="127.0.0.1", port=port, log_level="info")
"""


def _call(url: str, token: str, text: str) -> Any:
    """One MCP SDK session: call ``write_note``; the result, or the MCPError the SDK raised."""

    async def go() -> Any:
        headers = {"authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            try:
                return await client.call_tool("write_note", {"text": text})
            except MCPError as exc:
                return exc

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API runs an event loop in this thread
        return pool.submit(anyio.run, go).result()


def _elicitation_url(outcome: Any) -> str:
    assert isinstance(outcome, MCPError), outcome
    assert outcome.code == -32042, (outcome.code, outcome.message)
    (elicitation,) = UrlElicitationRequiredError.from_error(outcome.error).elicitations
    assert elicitation.mode == "url" and elicitation.url.endswith("/console/approvals/" + elicitation.elicitation_id)
    return elicitation.url


def _decide(page: Page, url: str, button: str, shots: Path, axe: str, name: str) -> None:
    page.goto(url)
    if "/authorize" in page.url:  # the console sends the person through the AS's sign-in first
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    assert "write_note" in page.content() and "my note" in page.content()
    assert not serious_violations(page, axe), name
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True, caret="initial")
    page.click(f"[data-test={button}]")
    page.wait_for_url(re.compile(re.escape(url) + r"\?done="))


@pytest.mark.timeout(600)
def test_a_person_approves_one_call_in_a_browser(
    authz_server_factory: Any,
    processes: Processes,
    free_port: Callable[[], int],
    chromium_executable: str,
    tmp_path: Path,
) -> None:
    axe = axe_source()
    if axe is None:
        missing("axe-core could not be fetched with npm")
    assert axe is not None
    server = authz_server_factory(dev=False, env={"AUTHZ_CONSOLE_ROLES": "alice=admin"}, start=False)
    server.cli("migrate")
    port = free_port()
    mcp_url = f"http://127.0.0.1:{port}/mcp"
    add_resource(server, mcp_url, "tools:read tools:write", "notes")
    agent_id = parse_fields(server.cli("agents", "create", "note-taker").stdout)["id"]
    secret = parse_fields(server.cli("agents", "credentials", "issue", agent_id).stdout)["client_secret"]
    rs = parse_fields(server.cli("admin-client", "create", "--name", "notes-mcp", "--scopes", "approvals:check").stdout)
    server.cli("oversight", "require", mcp_url, "write_note")
    add_user(server, "alice", PASSWORD)
    server.start()
    env = base_env(RS_APPROVAL_CLIENT_ID=rs["client_id"], RS_APPROVAL_CLIENT_SECRET=rs["client_secret"])
    mcp = processes.start("notes-mcp", ["-c", SERVER, server.issuer, str(port)], env)
    wait_http(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", mcp)
    form = {"grant_type": "client_credentials", "resource": mcp_url, "scope": "tools:read tools:write"}
    t = httpx2.post(f"{server.issuer}/token", auth=(agent_id, secret), data=form, timeout=10)
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]

    first = _elicitation_url(_call(mcp_url, token, "my note"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        csp: list[str] = []
        page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
        _decide(page, first, "approve", tmp_path, axe, "approve")
        assert "approved" in page.locator("[data-test=status]").inner_text()

        passed = _call(mcp_url, token, "my note")
        assert not isinstance(passed, MCPError) and not passed.is_error, passed
        second = _elicitation_url(_call(mcp_url, token, "my note"))  # used up: a new approval is needed
        assert second != first

        _decide(page, second, "reject", tmp_path, axe, "reject")
        refused = _call(mcp_url, token, "my note")
        assert isinstance(refused, MCPError) and refused.code == -32001
        assert "rejected by console:alice" in refused.message
        assert not csp, csp
        browser.close()
    listed = json.loads(server.cli("oversight", "approvals").stdout)
    assert [(a["status"], a["decided_by"]) for a in listed] == [("refused", "console:alice"), ("used", "console:alice")]
    assert "audit log intact" in server.cli("audit", "verify").stdout
