"""The admin console in headless Chromium against real processes: ``authz serve`` (no development
mode, policies in the database) and the demo MCP server (hybrid validation, budget hook, metering).

One story, every page: alice (admin) signs in through the AS's own sign-in page; an agent calls
tools and its budget bar moves; alice suspends the agent and its token is refused at the MCP
server while the agent page shows 0 live tokens; a policy edit with an error is located to its
file and line, then a valid edit is simulated as a draft (the
deciding policies, what changes), deployed and diffed; the simulator names the deciding policy;
usage, servers and audit render; alice grants a customer credit, sees it in the invoice preview,
closes the period and downloads the invoice's CSV; sign-out revokes; victor (viewer) can neither
reinstate the agent nor close a period. Each page is
screenshotted under the test's tmp dir, checked by axe-core (no serious or critical violation),
raises no CSP violation, and never contains a secret or a token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e._axe import axe_source, serious_violations
from tests.e2e._processes import (
    MCP_HEADERS,
    Processes,
    add_resource,
    add_user,
    base_env,
    parse_fields,
    processes,  # noqa: F401  (fixture)
    tools_call,
    wait_http,
    wait_until,
)
from tests.e2e.conftest import CHROMIUM_ARGS, missing

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 15_000


class Pages:
    """Visits, screenshots, axe and secret checks for every page the test shows."""

    def __init__(self, page: Page, out: Path, axe: str, secrets: list[str]) -> None:
        self.page, self.out, self.axe, self.secrets = page, out, axe, secrets
        self.csp_errors: list[str] = []
        self.shots: list[Path] = []
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_errors.append(f"{message.text} at {message.location}")

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state("load")
        path = self.out / f"{len(self.shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True, caret="initial")  # "hide" injects a style the CSP blocks
        self.shots.append(path)
        html = page.content()
        leaked = [s[:6] + "..." for s in self.secrets if s and s in html]
        assert not leaked, f"{name}: a secret or token is on the page"
        assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ", html), f"{name}: a JWT is on the page"
        bad = serious_violations(page, self.axe)
        assert not bad, f"{name}: axe found serious/critical violations: {bad}"
        assert not self.csp_errors, f"{name}: CSP violations: {self.csp_errors}"


def _mcp_call(url: str, token: str, i: int) -> httpx2.Response:
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    return httpx2.post(url, json=tools_call("add", {"a": i, "b": 1}, i + 1), headers=headers, timeout=10)


def _reload_until(page: Page, check: Callable[[], bool], what: str, tries: int = 60) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"the page never showed {what}")


def _nav(page: Page, label: str, path: str) -> None:
    """Click a navigation link (htmx-boosted: no full page load) and wait for the new page."""
    page.click(f"nav >> text={label}")
    page.wait_for_url(re.compile(".*" + re.escape(path) + r"(\?.*)?$"))
    page.wait_for_load_state("load")


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/console/agents")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/agents$"))


@pytest.mark.timeout(600)
def test_console_in_a_browser(
    authz_server_factory: Any,
    processes: Processes,  # noqa: F811
    free_port: Callable[[], int],
    chromium_executable: str,
    tmp_path: Path,
) -> None:
    axe = axe_source()
    if axe is None:
        missing("axe-core could not be fetched with npm")
    assert axe is not None
    env = {"AUTHZ_CACHE_STALENESS": "0.1", "AUTHZ_POLICIES": "db", "AUTHZ_CONSOLE_ROLES": "alice=admin,victor=viewer"}
    server = authz_server_factory(dev=False, env=env, start=False)
    server.cli("migrate")
    mcp_port = free_port()
    mcp_url = f"http://127.0.0.1:{mcp_port}/mcp"
    rs_id, rs_secret = add_resource(server, mcp_url, "tools:read tools:write tools:admin", "demo")
    agent_id = parse_fields(server.cli("agents", "create", "console-bot").stdout)["id"]
    agent_secret = parse_fields(server.cli("agents", "credentials", "issue", agent_id).stdout)["client_secret"]
    usage = parse_fields(
        server.cli("admin-client", "create", "--name", "demo-mcp", "--scopes", "budgets:use,metering:write").stdout
    )
    created = server.cli("budgets", "create", "--agent", agent_id, "--metric", "calls", "--limit", "20",
                         "--period", "day").stdout  # fmt: skip
    budget_id = parse_fields(created)["budget_id"]
    month = time.strftime("%Y-%m-01T00:00:00+00:00", time.gmtime())
    server.cli("billing", "plan", "hybrid", "--example", "hybrid", "--name", "Hybrid")
    server.cli("billing", "customer", "acme", "--name", "Acme Inc", "--currency", "USD", "--agent", agent_id)
    server.cli("billing", "subscribe", "acme", "hybrid", "--starts-at", month)
    add_user(server, "alice", PASSWORD)
    add_user(server, "victor", PASSWORD)
    server.start()
    args = ["-m", "resource_server.demo", "--port", str(mcp_port), "--issuer", server.issuer, "--mode", "hybrid"]
    args += ["--budget-hook", "--metering", "--metering-interval", "0.2"]
    demo_env = base_env(
        RS_CLIENT_ID=rs_id, RS_CLIENT_SECRET=rs_secret, RS_BUDGET_CLIENT_ID=usage["client_id"],
        RS_BUDGET_CLIENT_SECRET=usage["client_secret"], RS_METERING_CLIENT_ID=usage["client_id"],
        RS_METERING_CLIENT_SECRET=usage["client_secret"],
    )  # fmt: skip
    demo = processes.start("demo-mcp", args, demo_env)
    wait_http(f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp", demo)

    t = httpx2.post(f"{server.issuer}/token", auth=(agent_id, agent_secret), timeout=10,
                    data={"grant_type": "client_credentials", "resource": mcp_url, "scope": "tools:read"})  # fmt: skip
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    secrets = [agent_secret, rs_secret, usage["client_secret"], token]
    base = server.issuer
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            pages = Pages(page, shots, axe, secrets)

            # Sign in through the AS's own sign-in page (code + PKCE behind it).
            page.goto(base + "/console/")
            assert "/authorize" in page.url
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/console/")
            assert page.text_content("[data-test=agents-active]") == "1"
            pages.check("overview")

            # Budgets: the bar moves after tool calls.
            _nav(page, "Budgets", "/console/budgets")
            row = f"[data-test=budget-row][data-budget={budget_id}] [data-test=budget-pct]"
            assert page.text_content(row) == "0"
            for i in range(3):
                r = _mcp_call(mcp_url, token, i)
                assert r.status_code == 200, r.text
            _reload_until(page, lambda: int(page.text_content(row) or 0) >= 15, "3 of 20 calls spent")
            pages.check("budgets")

            # Agents: list, the agent's page with its live token, suspend with confirmation.
            _nav(page, "Agents", "/console/agents")
            page.fill("#q", "console")
            page.click("form[role=search] button")
            page.wait_for_url(re.compile(r".*/console/agents\?q=console.*"))
            pages.check("agents")
            page.click("text=console-bot")
            page.wait_for_url(re.compile(r".*/console/agents/agt_[0-9a-f]+$"))
            assert page.text_content("[data-test=live-tokens]") == "1"
            pages.check("agent")
            page.click("text=Suspend…")
            page.wait_for_url(re.compile(r".*/suspend$"))
            pages.check("confirm-suspend")
            page.fill("#reason", "console e2e")
            page.click("[data-test=confirm]")
            page.wait_for_selector("[data-test=agent-status]:has-text('suspended')")
            assert page.text_content("[data-test=live-tokens]") == "0"
            wait_until(lambda: _mcp_call(mcp_url, token, 9).status_code == 401, "the MCP server to refuse", 20, demo)

            # MCP servers and clients.
            _nav(page, "MCP servers", "/console/servers")
            assert mcp_url in page.content()
            pages.check("servers")

            # Policies: an edit with an error is located; a valid edit is deployed and diffed.
            _nav(page, "Policies", "/console/policies")
            page.select_option("#file", "servers/demo.cedar")
            page.click("text=Open")
            page.wait_for_url(re.compile(r".*file=servers%2Fdemo.cedar$"))
            original = page.input_value("#text")
            broken_line = original.count("\n") + 2
            page.fill("#text", original + "\npermit (principal, action, resource) when { oops };\n")
            page.click("button[value=validate]")
            page.wait_for_selector("[data-test=problems]")
            problem = page.text_content("[data-test=problem]") or ""
            assert problem.startswith(f"servers/demo.cedar:{broken_line}:"), problem
            assert page.locator("[data-test=bad-line]").count() >= 1
            pages.check("policy-error")
            edited = original.replace('"tools:write", "tools:admin"]', '"tools:write"]')
            assert edited != original
            page.fill("#text", edited)
            page.fill("#principal", agent_id)
            page.fill("#server", mcp_url)
            page.fill("#scopes", "tools:read tools:admin")
            page.click("[data-test=decide-draft]")  # the draft decides before it is deployed
            page.wait_for_selector("[data-test=draft-row]")
            assert page.locator("[data-test=changed]").count() == 1
            assert page.input_value("#text") == edited
            pages.check("policy-draft")
            page.fill("#comment", "no tools:admin for anyone")
            page.click("button[value=deploy]")
            page.wait_for_selector("text=deployed version 1")
            page.fill("#principal", agent_id)
            page.fill("#server", mcp_url)
            page.fill("#scopes", "tools:read tools:admin")
            page.click("[data-test=decide]")
            page.wait_for_selector("[data-test=decision]")
            decision = page.text_content("[data-test=decision]") or ""
            assert "permit" in decision and "deny" in decision and "demo.loopback-tools" in decision, decision
            pages.check("policies")
            page.click("text=vs previous")
            page.wait_for_url(re.compile(r".*/policies/versions/1$"))
            assert page.locator("pre.diff .del").count() >= 1
            pages.check("policy-diff")

            # Usage and cost: the three calls are counted (server-side totals).
            _nav(page, "Usage", "/console/usage")
            _reload_until(page, lambda: (page.text_content("[data-test=total-calls]") or "0") != "0", "usage")
            pages.check("usage")

            # Audit: the suspension is recorded with the person who did it; export works.
            _nav(page, "Audit", "/console/audit")
            page.fill("#event", "agent.")
            page.click("text=Filter")
            page.wait_for_url(re.compile(r".*/console/audit\?event=agent.*"))
            assert "actor=console:alice" in page.content()
            pages.check("audit")
            export = context.request.get(base + "/console/audit/export?event=agent.suspended")
            assert export.status == 200 and b"console:alice" in export.body()

            _nav(page, "Licenses", "/console/licenses")
            pages.check("licenses")

            # Billing: grant credit, see it in the preview (199.00 platform fee - 20.00), close the
            # period behind its confirmation, download the invoice's CSV; plans in words.
            _nav(page, "Billing", "/console/billing")
            pages.check("billing-customers")
            page.click("text=Acme Inc")
            page.wait_for_url(re.compile(r".*/console/billing/customers/acme$"))
            page.fill("#amount", "20.00")
            page.click("[data-test=grant]")
            page.wait_for_selector("p.notice:has-text('credit granted')")
            pages.check("billing-customer")
            balance = page.text_content("[data-test=credit-balance]")
            assert balance == "20.00 USD", page.inner_text("main")[:3000]
            page.click("[data-test=preview-link]")
            page.wait_for_url(re.compile(r".*/acme/preview$"))
            assert (page.text_content("[data-test=total]") or "").strip() == "179.00"
            pages.check("billing-preview")
            page.click("text=Close this period…")
            page.wait_for_url(re.compile(r".*/acme/close.*"))
            pages.check("billing-close")
            page.check("#force")
            page.click("[data-test=confirm]")
            page.wait_for_selector("p.notice:has-text('finalized')")
            assert (page.get_attribute("[data-test=csv]", "href") or "").endswith("/csv")
            pages.check("billing-invoice")
            csv = context.request.get(base + (page.get_attribute("[data-test=csv]", "href") or ""))
            assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
            assert b"179.00" in csv.body()
            page.click("nav.tabs >> text=Invoices")
            page.wait_for_url(re.compile(r".*/console/billing/invoices$"))
            assert page.locator("[data-test=invoice-row]").count() == 1
            pages.check("billing-invoices")
            page.click("nav.tabs >> text=Plans")
            page.wait_for_url(re.compile(r".*/console/billing/plans$"))
            pages.check("billing-plans")
            page.click("text=hybrid@1")
            page.wait_for_url(re.compile(r".*/console/billing/plans/hybrid(@|%40)1$"))
            assert page.locator("[data-test=component]").count() == 3
            pages.check("billing-plan")

            # Sign out revokes the session: the old cookie no longer opens a page.
            page.click("text=Sign out")
            page.wait_for_selector("text=Signed out")
            pages.check("signed-out")
            page.goto(base + "/console/")
            assert "/authorize" in page.url

            # A viewer cannot reinstate the agent.
            viewer = browser.new_context()
            vpage = viewer.new_page()
            _sign_in(vpage, base, "victor")
            vpage.goto(f"{base}/console/agents/{agent_id}/reinstate")
            assert "does not allow this" in vpage.content()
            vpage.click("[data-test=confirm]")
            vpage.wait_for_selector("text=Not allowed")  # the refusal is the POST's answer: wait for it
            vpage.goto(f"{base}/console/agents/{agent_id}")
            assert vpage.text_content("[data-test=agent-status]") == "suspended"
            vpage.goto(f"{base}/console/billing/customers/acme/close")  # nor close a period
            assert "does not allow this" in vpage.content()
            vpage.click("[data-test=confirm]")
            vpage.wait_for_selector("text=Not allowed")  # the refusal is the POST's answer: wait for it
        finally:
            browser.close()
    assert len(pages.shots) >= 20
