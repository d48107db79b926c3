"""Parameters outside their RFC 6749 Appendix A grammar: a 400 page or a safe error redirect, never 500.

A red-team run found ``"``, ``\\``, ``é`` or a newline in ``redirect_uri`` or ``response_type`` made
``GET /authorize`` answer 500 (Authlib refuses an error description built from such a value).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from authz.storage.models import AuthorizationCode
from tests.authz.conftest import AS, REDIRECT, RESOURCE, pkce_pair, redirect_params
from tests.authz.oauth.endpoints.test_consent_pages import _hidden, _to_consent

pytestmark = pytest.mark.anyio

HOSTILE = ['"', "\\", "é", "\n"]


def _params(**overrides: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "public-app",
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "resource": RESOURCE,
        "scope": "tools:read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def _codes(authz: AS) -> int:
    with authz.ctx.store.engine.connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(AuthorizationCode)).scalar_one()
    return count


@pytest.mark.requirement("rfc6749:abnf-no-redirect")
@pytest.mark.parametrize("name", ["redirect_uri", "client_id", "state"])
async def test_malformed_client_redirect_uri_or_state_is_a_400_page(authz: AS, name: str) -> None:
    authz.public_client()
    for char in HOSTILE:
        value = _params()[name] + char
        if name in ("client_id", "state") and char in ('"', "\\"):
            value += "é"  # '"' and '\' are VSCHAR: fine in a client_id or state
        r = await authz.http.get("/authorize", params=_params(**{name: value}))
        assert r.status_code == 400, (char, r.text)
        assert "location" not in r.headers
        assert "invalid_request" in r.text and f"The {name} parameter is malformed." in r.text
    assert _codes(authz) == 0


@pytest.mark.requirement("rfc6749:abnf-error-redirect")
@pytest.mark.parametrize(("name", "error"), [("response_type", "invalid_request"), ("scope", "invalid_scope")])
async def test_malformed_response_type_or_scope_is_a_safe_error_redirect(authz: AS, name: str, error: str) -> None:
    authz.public_client()
    for char in HOSTILE:
        r = await authz.http.get("/authorize", params=_params(**{name: _params()[name] + char}))
        assert r.status_code == 302, (char, r.text)
        assert r.headers["location"].startswith(REDIRECT + "?")
        q = redirect_params(r)
        assert q == {
            "error": error,
            "error_description": f"The {name} parameter is malformed.",
            "state": "st-1",
            "iss": authz.settings.issuer,
        }
    assert _codes(authz) == 0


async def test_malformed_response_type_of_an_unknown_client_is_a_page(authz: AS) -> None:
    for char in HOSTILE:
        r = await authz.http.get("/authorize", params=_params(client_id="nobody", response_type="code" + char))
        assert r.status_code == 400 and "location" not in r.headers and "invalid_request" in r.text


async def test_other_parameters_with_hostile_characters_are_refused_or_ignored(authz: AS) -> None:
    authz.public_client()
    for name in ("resource", "code_challenge", "code_challenge_method", "prompt", "nonce"):
        for char in HOSTILE:
            r = await authz.http.get("/authorize", params=_params(**{name: _params().get(name, "x") + char}))
            assert r.status_code in (302, 400), (name, char, r.text)
            if name in ("resource", "code_challenge", "code_challenge_method"):
                expected = "invalid_target" if name == "resource" else "invalid_request"
                assert r.status_code == 302 and redirect_params(r)["error"] == expected, (name, char)
    assert _codes(authz) == 2 * len(HOSTILE)  # prompt and nonce are extensions we ignore


async def test_the_sign_in_post_refuses_a_hostile_request_with_a_page(authz_strict: AS) -> None:
    authz_strict.public_client()
    page = await authz_strict.http.get("/authorize", params=_params())
    assert page.status_code == 200 and "Sign in" in page.text
    csrf = _hidden(page.text, "csrf_token")
    for char in HOSTILE:
        hostile = urlencode(_params(redirect_uri=REDIRECT + char))
        form = {"csrf_token": csrf, "request": hostile, "username": "alice", "password": "no"}
        r = await authz_strict.http.post("/authorize/login", data=form)
        assert r.status_code == 400 and "location" not in r.headers, (char, r.text)
        assert "The redirect_uri parameter is malformed." in r.text


async def test_the_consent_post_refuses_a_hostile_request_with_a_page(authz_strict: AS) -> None:
    html, _ = await _to_consent(authz_strict)
    for char in HOSTILE:
        hostile = urlencode(_params(redirect_uri=REDIRECT + char))
        form = {"csrf_token": _hidden(html, "csrf_token"), "request": hostile, "decision": "approve"}
        r = await authz_strict.http.post("/authorize/consent", data=form)
        assert r.status_code == 400 and "location" not in r.headers, (char, r.text)
        assert "The redirect_uri parameter is malformed." in r.text
    assert authz_strict.ctx.store.get_consent(authz_strict.users["alice"].id, "public-app", RESOURCE) is None


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("grant_type", "invalid_request"),
        ("scope", "invalid_scope"),
        ("redirect_uri", "invalid_request"),
        ("code", "invalid_request"),
        ("refresh_token", "invalid_request"),
    ],
)
async def test_token_endpoint_refuses_malformed_parameters(authz: AS, name: str, error: str) -> None:
    reg = authz.machine_client()
    assert reg.client_secret is not None
    for char in HOSTILE:
        form: dict[str, Any] = {"grant_type": "client_credentials", "resource": RESOURCE}
        vschar = char in ('"', "\\") and name in ("code", "refresh_token")  # VSCHAR: add one that is not
        form[name] = form.get(name, "x") + char + ("é" if vschar else "")
        r = await authz.http.post("/token", data=form, auth=(reg.client_id, reg.client_secret))
        assert r.status_code == 400, (char, r.text)
        assert r.json() == {"error": error, "error_description": f"The {name} parameter is malformed."}


async def test_a_refused_client_authentication_names_the_methods_in_words(authz: AS) -> None:
    """``error_description`` never shows a Python list (Authlib's own text did)."""
    reg = authz.machine_client()
    r = await authz.http.post("/token", data={"grant_type": "client_credentials", "client_id": reg.client_id})
    assert r.status_code in (400, 401), r.text
    description = r.json()["error_description"]
    assert "[" not in description and "'" not in description, description
