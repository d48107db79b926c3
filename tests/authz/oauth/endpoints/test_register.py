"""RFC 7591 dynamic client registration at /register, then real flows with the registered clients."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authz.identity.registry import Registered
from tests.authz.conftest import AS, REDIRECT, ASFactory

pytestmark = pytest.mark.anyio


@pytest.fixture
async def dcr(as_factory: ASFactory) -> AS:
    return await as_factory(dev_mode=True, dynamic_registration=True)


async def test_public_client_registers_and_completes_a_pkce_code_flow(dcr: AS) -> None:
    meta = {
        "client_name": "MCP CLI",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
    }
    r = await dcr.http.post("/register", json=meta)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none" and body["redirect_uris"] == [REDIRECT]
    assert body["grant_types"] == ["authorization_code", "refresh_token"] and body["application_type"] == "native"
    assert abs(body["client_id_issued_at"] - time.time()) < 60 and not body["client_id"].startswith("https://")
    tokens, _ = await dcr.code_flow(body["client_id"], scope="tools:read")
    assert tokens["access_token"] and tokens["refresh_token"]
    row = dcr.ctx.store.get_client(body["client_id"])
    assert row is not None and row.kind == "dynamic"


async def test_confidential_client_secret_works_at_the_token_endpoint(dcr: AS) -> None:
    r = await dcr.http.post(
        "/register",
        json={
            "client_name": "Agent",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert body["response_types"] == [] and body["redirect_uris"] == []
    reg = Registered(body["client_id"], body["client_secret"])
    t = await dcr.client_credentials(reg, scope="tools:read")
    assert t.status_code == 200, t.text
    info = await dcr.introspect(t.json()["access_token"])
    assert info["active"] is True and info["client_id"] == reg.client_id
    wrong = await dcr.client_credentials(Registered(reg.client_id, "not-the-secret"), scope="tools:read")
    assert wrong.status_code == 401
    # the secret is never written to the audit trail
    deadline = time.monotonic() + 3
    while True:
        dcr.ctx.audit.flush()
        events = [e for e in dcr.ctx.store.list_audit(0, 1000) if e.event == "client.registered"]
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert [e.client_id for e in events] == [reg.client_id]
    assert body["client_secret"] not in str([(e.detail, e.reason) for e in dcr.ctx.store.list_audit(0, 1000)])


async def test_defaults_follow_rfc_7591(dcr: AS) -> None:
    r = await dcr.http.post("/register", json={"redirect_uris": ["https://app.example/cb"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic" and body["client_secret"]
    assert body["grant_types"] == ["authorization_code"] and body["response_types"] == ["code"]
    assert body["application_type"] == "web"


KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


@pytest.mark.parametrize(
    ("meta", "error"),
    [
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://app.example/cb"}, "invalid_redirect_uri"),
        ({"grant_types": ["authorization_code"]}, "invalid_redirect_uri"),
        ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "application_type": "desktop"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "jwks": {"keys": [{**KEY, "d": "secret"}]}}, "invalid_client_metadata"),
        (
            {"redirect_uris": [REDIRECT], "jwks": {"keys": [KEY]}, "jwks_uri": "https://app.example/jwks"},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": [REDIRECT], "jwks_uri": "https://10.0.0.1/jwks"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "client_name": 42}, "invalid_client_metadata"),
    ],
)
async def test_invalid_metadata_is_refused(dcr: AS, meta: dict[str, Any], error: str) -> None:
    r = await dcr.http.post("/register", json=meta)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert [c.kind for c in dcr.ctx.store.list_clients() if c.kind == "dynamic"] == []


@pytest.mark.requirement("rfc7591:display-uris-https")
@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "tos_uri", "policy_uri"])
async def test_display_uris_must_be_https_web_pages(dcr: AS, name: str) -> None:
    for bad in (
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "http://app.example/page",
        "ftp://app.example/x",
        "https://user:pw@app.example/",
        "https://app.example/\nx",
        "//app.example/x",
        42,
    ):
        r = await dcr.http.post("/register", json={"redirect_uris": [REDIRECT], name: bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json() == {
            "error": "invalid_client_metadata",
            "error_description": f"{name} must be an https URL.",
        }
    assert [c for c in dcr.ctx.store.list_clients() if c.kind == "dynamic"] == []
    r = await dcr.http.post("/register", json={"redirect_uris": [REDIRECT], name: "https://app.example/page"})
    assert r.status_code == 201 and r.json()[name] == "https://app.example/page"


async def test_loopback_http_display_uris_only_in_development(as_factory: ASFactory) -> None:
    dev = await as_factory(dev_mode=True, dynamic_registration=True, cimd_allow_loopback=True)
    r = await dev.http.post("/register", json={"redirect_uris": [REDIRECT], "logo_uri": "http://127.0.0.1:3999/l.png"})
    assert r.status_code == 201, r.text
    r = await dev.http.post("/register", json={"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"client_name=x", "application/x-www-form-urlencoded"),
        (b'{"client_name": "' + b"x" * 20_000 + b'"}', "application/json"),
        (b"[" * 15_000, "application/json"),  # under the size limit; json.loads raised RecursionError: a 500
        (b'{"redirect_uris": [], "x": ' + b"[" * 40 + b"]" * 40 + b"}", "application/json"),
    ],
)
async def test_bad_bodies_are_invalid_client_metadata(dcr: AS, content: bytes, ctype: str) -> None:
    r = await dcr.http.post("/register", content=content, headers={"Content-Type": ctype})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client_metadata"
    assert [c for c in dcr.ctx.store.list_clients() if c.kind == "dynamic"] == []


async def test_private_key_jwt_client_registers_with_public_keys(dcr: AS) -> None:
    meta = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [KEY]}}
    r = await dcr.http.post("/register", json=meta)
    assert r.status_code == 201, r.text
    assert "client_secret" not in r.json() and r.json()["jwks"] == {"keys": [KEY]}


async def test_registration_disabled_is_404(as_factory: ASFactory) -> None:
    server = await as_factory(dev_mode=True)
    r = await server.http.post("/register", json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert r.status_code == 404
    meta = (await server.http.get("/.well-known/oauth-authorization-server")).json()
    assert "registration_endpoint" not in meta


async def test_metadata_advertises_the_endpoint_when_enabled(dcr: AS) -> None:
    meta = (await dcr.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["registration_endpoint"] == dcr.settings.issuer + "/register"


async def test_a_registered_scope_is_not_a_ceiling_so_step_up_works(as_factory: ASFactory) -> None:
    """The MCP SDK registers with the first challenge's scope and later asks for the union."""
    server = await as_factory(dev_mode=True, dynamic_registration=True)
    r = await server.http.post(
        "/register",
        json={
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "scope": "tools:read",
            "grant_types": ["authorization_code"],
        },
    )
    assert r.status_code == 201 and r.json()["scope"] == "tools:read"
    body, _ = await server.code_flow(r.json()["client_id"], scope="tools:read tools:write")
    assert body["scope"] == "tools:read tools:write"
