"""Sign-in and consent in a real headless Chromium against a real ``authz serve`` (no development mode).

A user ``alice`` (``authz users add --password-stdin``), a registered MCP server and a public
client whose redirect URI is a tiny real HTTP server on loopback that records every request it
gets. Playwright drives the pages a person would see; the code is then exchanged with PKCE.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from playwright.async_api import Browser, Page, async_playwright

from conformance.procs import AuthzServer
from tests.e2e._processes import add_client, add_resource, add_user

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGE_TIMEOUT_MS = 15_000  # every Playwright wait is bounded by this
PASSWORD = "correct horse battery staple"
CLIENT_NAME = "Browser Test App"
RESOURCE_NAME = "Notes MCP"

# The pages' CSP must allow the client's redirect origin in form-action: Chromium applies form-action to
# the redirects that follow a form post. Each flow that ends in such a redirect runs with the CSP
# enforced (what users get) and once more with Playwright's bypass_csp (the flow without the policy).
CSP_MODES = pytest.mark.parametrize("csp", ["enforced", "bypassed"])


# -- the client's redirect URI: a real HTTP server that records what it receives ----------------
@dataclass
class CallbackServer:
    port: int
    hits: list[dict[str, str]] = field(default_factory=list)
    forge_page: str = ""  # HTML served at /forge (an attacker's page on another origin)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def wait_for_hit(self, count: int, timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while len(self.hits) < count:
            assert time.monotonic() < deadline, f"the callback received {len(self.hits)} requests, expected {count}"
            time.sleep(0.05)
        return self.hits[count - 1]


def _handler(server: CallbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/callback":
                server.hits.append({k: v[0] for k, v in parse_qs(parts.query).items()})
                body = b"<!doctype html><title>callback</title><p id=done>received</p>"
            elif parts.path == "/forge":
                body = server.forge_page.encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def callback(free_port: Callable[[], int]) -> Iterator[CallbackServer]:
    server = CallbackServer(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", server.port), _handler(server))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# -- the authorization server with a user, a resource and a public client ------------------------
@dataclass
class Setup:
    authz: AuthzServer
    callback: CallbackServer
    client_id: str
    resource: str
    user_id: str

    def authorization_url(self, scope: str, state: str, challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.callback.redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource,
        }
        return f"{self.authz.url}/authorize?{urlencode(query)}"


@pytest.fixture
def setup(authz_server_factory: Any, callback: CallbackServer, free_port: Callable[[], int]) -> Setup:
    authz: AuthzServer = authz_server_factory(dev=False, start=False)
    authz.cli("migrate")
    resource = f"http://127.0.0.1:{free_port()}/mcp"
    add_resource(authz, resource, "tools:read tools:write", name=RESOURCE_NAME)
    client_id, secret = add_client(authz, "--public", "--name", CLIENT_NAME, "--redirect-uri", callback.redirect_uri)
    assert secret is None
    uid = add_user(authz, "alice", PASSWORD)
    authz.start()
    return Setup(authz, callback, client_id, resource, uid)


@pytest.fixture
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Browser, csp: str = "enforced") -> Page:
    context = await browser.new_context(bypass_csp=csp == "bypassed")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    return await context.new_page()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(page: Page, password: str = PASSWORD) -> None:
    await page.fill("#username", "alice")
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def exchange(setup: Setup, code: str, verifier: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(
            f"{setup.authz.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": setup.callback.redirect_uri,
                "code_verifier": verifier,
                "client_id": setup.client_id,
                "resource": setup.resource,
            },
        )


# -- tests ----------------------------------------------------------------------------------------
@CSP_MODES
async def test_sign_in_consent_approve_and_exchange(setup: Setup, browser: Browser, csp: str, tmp_path: Path) -> None:
    page = await new_page(browser, csp)
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    await page.goto(setup.authorization_url("tools:read tools:write", state, challenge))
    assert await page.is_visible("#username") and await page.is_visible("#password")
    assert CLIENT_NAME in await page.inner_text("main")

    # A wrong password: an error on the login page, nothing sent to the client.
    await sign_in(page, "not the password")
    assert "Wrong username or password" in await page.inner_text(".error")
    assert await page.is_visible("#password")
    assert "/authorize/login" in page.url
    assert setup.callback.hits == []

    # The right one: the consent page names the client, the redirect host, the MCP server and the scopes.
    await sign_in(page)
    await page.wait_for_selector("#client-name")
    assert (await page.inner_text("#client-name")).strip() == CLIENT_NAME
    assert (await page.inner_text("#redirect-host")).strip() == f"127.0.0.1:{setup.callback.port}"
    resource_text = await page.inner_text("#resource")
    assert setup.resource in resource_text and RESOURCE_NAME in resource_text
    scopes = (await page.inner_text("#scopes")).split()
    assert sorted(scopes) == ["tools:read", "tools:write"]
    assert "alice" in await page.inner_text("main")
    assert setup.callback.hits == []

    shot = tmp_path / "consent.png"
    await page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, len(data)
    print(f"consent page screenshot: {shot}")

    # Approve: the callback gets the code, the original state and iss (RFC 9207).
    await page.click("button[value=approve]")
    hit = setup.callback.wait_for_hit(1)
    await page.wait_for_url(f"{setup.callback.redirect_uri}?*")
    assert hit["state"] == state
    assert hit["iss"] == setup.authz.issuer
    assert "error" not in hit and hit["code"]

    r = await exchange(setup, hit["code"], verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"].lower() == "bearer"
    assert set(body["scope"].split()) == {"tools:read", "tools:write"}
    # The code is single-use.
    again = await exchange(setup, hit["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text


@CSP_MODES
async def test_deny(setup: Setup, browser: Browser, csp: str) -> None:
    page = await new_page(browser, csp)
    _verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    await page.goto(setup.authorization_url("tools:read", state, challenge))
    await sign_in(page)
    await page.wait_for_selector("#client-name")
    await page.click("button[value=deny]")
    hit = setup.callback.wait_for_hit(1)
    assert hit["error"] == "access_denied", hit
    assert hit["state"] == state
    assert hit["iss"] == setup.authz.issuer
    assert "code" not in hit


@CSP_MODES
async def test_remembered_consent_skips_the_page(setup: Setup, browser: Browser, csp: str) -> None:
    page = await new_page(browser, csp)
    _v, challenge = pkce()
    await page.goto(setup.authorization_url("tools:read", "first", challenge))
    await sign_in(page)
    await page.wait_for_selector("#client-name")
    await page.click("button[value=approve]")
    assert setup.callback.wait_for_hit(1)["state"] == "first"

    # Same user session, client, resource and scopes: straight back to the client with a code.
    _v, challenge = pkce()
    await page.goto(setup.authorization_url("tools:read", "second", challenge))
    hit = setup.callback.wait_for_hit(2)
    assert hit["state"] == "second" and hit["code"] and hit["iss"] == setup.authz.issuer
    assert page.url.startswith(setup.callback.redirect_uri), page.url

    # A wider request is not covered by the remembered consent: the page is shown again.
    _v, challenge = pkce()
    await page.goto(setup.authorization_url("tools:read tools:write", "third", challenge))
    await page.wait_for_selector("#client-name")
    assert sorted((await page.inner_text("#scopes")).split()) == ["tools:read", "tools:write"]
    assert len(setup.callback.hits) == 2

    # Signed out (a new browser), the consent is still remembered: sign-in leads straight back to the client.
    page = await new_page(browser, csp)
    _v, challenge = pkce()
    await page.goto(setup.authorization_url("tools:read", "fourth", challenge))
    await sign_in(page)
    hit = setup.callback.wait_for_hit(3)
    assert hit["state"] == "fourth" and hit["code"] and hit["iss"] == setup.authz.issuer


async def test_forged_consent_post_is_refused(setup: Setup, browser: Browser) -> None:
    page = await new_page(browser)
    _v, challenge = pkce()
    authorize = setup.authorization_url("tools:read tools:write", "victim", challenge)
    await page.goto(authorize)
    await sign_in(page)
    await page.wait_for_selector("#client-name")  # alice is signed in: her session cookie is in the browser

    # Another origin (same site: cookies are sent) auto-submits an approval without the CSRF token.
    request = urlsplit(authorize).query
    setup.callback.forge_page = f"""<!doctype html><title>win a prize</title>
<form id=f method=post action="{setup.authz.url}/authorize/consent">
<input type=hidden name=decision value=approve><input type=hidden name=request value="{html.escape(request)}">
</form><script>document.getElementById('f').submit()</script>"""
    await page.goto(f"http://127.0.0.1:{setup.callback.port}/forge")
    await page.wait_for_url(f"{setup.authz.url}/authorize/consent")
    await page.wait_for_load_state()
    text = await page.inner_text("main")
    assert "invalid_request" in text and "consent form expired" in text, text
    assert setup.callback.hits == []

    # The same through the browser's request API (alice's cookies attached), with a bogus token too.
    for form in (
        {"decision": "approve", "request": request},
        {"decision": "approve", "request": request, "csrf_token": "x" * 43},
    ):
        r = await page.context.request.post(f"{setup.authz.url}/authorize/consent", form=form, max_redirects=0)
        assert r.status == 400, r.status
        assert "location" not in r.headers
        assert "consent form expired" in await r.text()
    assert setup.callback.hits == []
