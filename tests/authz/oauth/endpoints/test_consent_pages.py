"""Sign-in and consent pages over HTTP (the browser suite in tests/e2e drives them in Chromium)."""

from __future__ import annotations

import re

import pytest

from tests.authz.conftest import AS, REDIRECT, pkce_pair, redirect_params

pytestmark = pytest.mark.anyio


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1).replace("&amp;", "&")


async def _to_consent(authz: AS, scope: str = "tools:read") -> tuple[str, str]:
    """Sign alice in and return (consent page html, original query)."""
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize("public-app", code_challenge=challenge, code_challenge_method="S256", scope=scope)
    assert r.status_code == 200 and "Sign in" in r.text
    form = {
        "csrf_token": _hidden(r.text, "csrf_token"),
        "request": _hidden(r.text, "request"),
        "username": "alice",
        "password": "correct horse battery",
    }
    login = await authz.http.post("/authorize/login", data=form)
    assert login.status_code == 303
    page = await authz.http.get(login.headers["location"])
    assert page.status_code == 200 and "Authorize access" in page.text
    return page.text, form["request"]


async def test_wrong_password_shows_the_form_again_and_is_audited(authz_strict: AS) -> None:
    authz_strict.public_client()
    _, challenge = pkce_pair()
    r = await authz_strict.authorize("public-app", code_challenge=challenge, code_challenge_method="S256")
    form = {
        "csrf_token": _hidden(r.text, "csrf_token"),
        "request": _hidden(r.text, "request"),
        "username": "alice",
        "password": "wrong",
    }
    bad = await authz_strict.http.post("/authorize/login", data=form)
    assert bad.status_code == 401 and "Wrong username or password" in bad.text and "set-cookie" not in bad.headers
    authz_strict.ctx.audit.flush()
    assert any(e.event == "login.failed" for e in authz_strict.ctx.store.list_audit(0, 100))


async def test_consent_page_shows_client_redirect_host_resource_and_scopes(authz_strict: AS) -> None:
    html, _ = await _to_consent(authz_strict, "tools:read tools:write")
    assert "Public App" in html and "127.0.0.1:3999" in html and "http://127.0.0.1:9200/mcp" in html
    assert "tools:read" in html and "tools:write" in html


@pytest.mark.requirement("mcp:consent-csrf")
async def test_consent_without_the_csrf_token_changes_nothing(authz_strict: AS) -> None:
    _, query = await _to_consent(authz_strict)
    r = await authz_strict.http.post("/authorize/consent", data={"request": query, "decision": "approve"})
    assert r.status_code == 400 and "location" not in r.headers
    assert (
        authz_strict.ctx.store.get_consent(authz_strict.users["alice"].id, "public-app", "http://127.0.0.1:9200/mcp")
        is None
    )


@pytest.mark.requirement("rfc9700:post-redirect-303")
async def test_approve_redirects_with_a_code_and_remembers_consent(authz_strict: AS) -> None:
    html, query = await _to_consent(authz_strict)
    r = await authz_strict.http.post(
        "/authorize/consent", data={"csrf_token": _hidden(html, "csrf_token"), "request": query, "decision": "approve"}
    )
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT)  # RFC 9700 §4.12
    q = redirect_params(r)
    assert q["code"] and q["state"] == "st-1" and q["iss"] == "http://127.0.0.1:9100"
    again = await authz_strict.http.get("/authorize?" + query)  # remembered: straight back to the client
    assert again.status_code == 302 and "code" in redirect_params(again)


@pytest.mark.requirement("rfc6749:access-denied")
async def test_deny_redirects_access_denied_with_state_and_iss(authz_strict: AS) -> None:
    html, query = await _to_consent(authz_strict)
    r = await authz_strict.http.post(
        "/authorize/consent", data={"csrf_token": _hidden(html, "csrf_token"), "request": query, "decision": "deny"}
    )
    assert r.status_code == 303
    q = redirect_params(r)
    assert q["error"] == "access_denied" and q["state"] == "st-1" and q["iss"] == "http://127.0.0.1:9100"


async def test_pages_allow_form_posts_only_to_self_and_the_validated_redirect_origin(authz_strict: AS) -> None:
    authz_strict.public_client()
    _, challenge = pkce_pair()
    r = await authz_strict.authorize("public-app", code_challenge=challenge, code_challenge_method="S256")
    policy = r.headers["content-security-policy"]
    assert "form-action 'self' http://127.0.0.1:3999;" in policy and "frame-ancestors 'none'" in policy
    assert r.headers["x-frame-options"] == "DENY"
    error = await authz_strict.authorize("nobody")
    assert "form-action 'none'" in error.headers["content-security-policy"]


async def test_consent_asks_only_for_what_policy_lets_the_user_delegate(authz_strict: AS) -> None:
    """OTHER_RESOURCE offers tools:read and files:read; the embedded policy set permits only tools:*."""
    authz_strict.public_client()
    _, challenge = pkce_pair()
    r = await authz_strict.authorize(
        "public-app",
        resource="http://127.0.0.1:9300/mcp",
        scope="tools:read files:read",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    form = {
        "csrf_token": _hidden(r.text, "csrf_token"),
        "request": _hidden(r.text, "request"),
        "username": "alice",
        "password": "correct horse battery",
    }
    login = await authz_strict.http.post("/authorize/login", data=form)
    page = await authz_strict.http.get(login.headers["location"])
    assert page.status_code == 200 and "<code>tools:read</code>" in page.text
    assert "files:read" not in page.text
