"""The authorization endpoint and the authorization_code grant: PKCE, redirect URIs, iss, codes."""

from __future__ import annotations

import threading

import anyio
import pytest

from tests.authz.conftest import AS, REDIRECT, RESOURCE, pkce_pair, redirect_params

pytestmark = pytest.mark.anyio


async def _code(authz: AS, client_id: str = "public-app", **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    r = await authz.authorize(client_id, code_challenge=challenge, code_challenge_method="S256", **extra)
    assert r.status_code == 302, r.text
    return redirect_params(r)["code"], verifier


async def _redeem(authz: AS, code: str, verifier: str, client_id: str = "public-app", **extra: str):  # type: ignore[no-untyped-def]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
        **extra,
    }
    return await authz.http.post("/token", data=data)


@pytest.mark.requirement("rfc9207:iss-on-success")
@pytest.mark.requirement("rfc6749:state-round-trip")
async def test_success_redirect_carries_code_state_and_iss(authz: AS) -> None:
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize("public-app", code_challenge=challenge, code_challenge_method="S256", state="xyz")
    assert r.status_code == 302
    assert r.headers["location"].startswith(REDIRECT + "?")
    q = redirect_params(r)
    assert q["state"] == "xyz" and q["iss"] == "http://127.0.0.1:9100" and q["code"]


@pytest.mark.requirement("rfc7636:s256-required")
@pytest.mark.requirement("rfc9207:iss-on-error")
@pytest.mark.parametrize(
    "params",
    [
        {},  # no challenge at all
        {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "plain"},
        {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},  # method omitted
        {"code_challenge": "short", "code_challenge_method": "S256"},
    ],
)
async def test_pkce_missing_plain_or_omitted_method_is_an_error_redirect(authz: AS, params: dict[str, str]) -> None:
    authz.public_client()
    r = await authz.authorize("public-app", state="s-9", **params)
    assert r.status_code == 302
    q = redirect_params(r)
    assert q["error"] == "invalid_request" and q["state"] == "s-9" and q["iss"] == "http://127.0.0.1:9100"
    assert "code" not in q


@pytest.mark.requirement("oauth21:redirect-exact-match")
async def test_unregistered_redirect_uri_is_an_error_page_never_a_redirect(authz: AS) -> None:
    authz.public_client()
    _, challenge = pkce_pair()
    for bad in ("https://evil.example/cb", REDIRECT + "/extra", REDIRECT + "?x=1", "http://127.0.0.1:3999/other"):
        r = await authz.authorize(
            "public-app", redirect_uri=bad, code_challenge=challenge, code_challenge_method="S256"
        )
        assert r.status_code == 400, bad
        assert "location" not in r.headers
        assert "invalid_request" in r.text


async def test_unknown_client_is_an_error_page(authz: AS) -> None:
    r = await authz.authorize("nobody")
    assert r.status_code == 400 and "location" not in r.headers and "invalid_client" in r.text


@pytest.mark.requirement("rfc8252:loopback-any-port")
async def test_loopback_redirect_accepts_any_port(authz: AS) -> None:
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize(
        "public-app",
        redirect_uri="http://127.0.0.1:51234/callback",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert r.status_code == 302 and r.headers["location"].startswith("http://127.0.0.1:51234/callback?")


async def test_unknown_resource_redirects_invalid_target(authz: AS) -> None:
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize(
        "public-app", resource="http://127.0.0.1:1/nope", code_challenge=challenge, code_challenge_method="S256"
    )
    q = redirect_params(r)
    assert q["error"] == "invalid_target" and q["iss"]


@pytest.mark.requirement("rfc6749:code-single-use")
async def test_replayed_code_is_refused_and_revokes_what_it_issued(authz: AS) -> None:
    authz.public_client()
    code, verifier = await _code(authz)
    first = await _redeem(authz, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert (await authz.introspect(tokens["access_token"]))["active"] is True
    again = await _redeem(authz, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await authz.introspect(tokens["access_token"]))["active"] is False
    refresh = await authz.http.post(
        "/token",
        data={"grant_type": "refresh_token", "client_id": "public-app", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    authz.ctx.audit.flush()
    assert any(e.event == "code.replayed" for e in authz.ctx.store.list_audit(0, 1000))


async def test_concurrent_redemptions_of_one_code_yield_exactly_one_token(authz: AS) -> None:
    authz.public_client()
    code, verifier = await _code(authz)
    statuses: list[int] = []

    async def redeem() -> None:
        statuses.append((await _redeem(authz, code, verifier)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(redeem)
    assert sorted(statuses) == [200] + [400] * 7
    assert threading.active_count() >= 1


@pytest.mark.requirement("rfc7636:verifier-checked")
async def test_wrong_verifier_is_invalid_grant_and_audited(authz: AS) -> None:
    authz.public_client()
    code, _ = await _code(authz)
    other, _ = pkce_pair()
    r = await _redeem(authz, code, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    authz.ctx.audit.flush()
    assert any(e.reason == "pkce_mismatch" for e in authz.ctx.store.list_audit(0, 1000))


async def test_missing_verifier_is_invalid_request(authz: AS) -> None:
    authz.public_client()
    code, _ = await _code(authz)
    r = await authz.http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "public-app"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


@pytest.mark.requirement("rfc6749:code-bound-to-client-and-redirect")
async def test_code_bound_to_its_client_and_redirect_uri(authz: AS) -> None:
    authz.public_client()
    authz.public_client("other-app")
    code, verifier = await _code(authz)
    assert (await _redeem(authz, code, verifier, client_id="other-app")).json()["error"] == "invalid_grant"
    code, verifier = await _code(authz)
    r = await _redeem(authz, code, verifier, redirect_uri="http://127.0.0.1:4000/callback")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_token_request_resource_must_match_the_authorization(authz: AS) -> None:
    authz.public_client()
    code, verifier = await _code(authz)
    r = await _redeem(authz, code, verifier, resource="http://127.0.0.1:9300/mcp")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


async def test_expired_code_is_invalid_grant(authz: AS) -> None:
    authz.public_client()
    code, verifier = await _code(authz)
    from sqlalchemy import update

    from authz.storage.models import AuthorizationCode

    with authz.ctx.store.sessions.begin() as s:  # type: ignore[attr-defined]
        s.execute(update(AuthorizationCode).values(expires_at=0))
    r = await _redeem(authz, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_token_carries_the_user_and_the_resource(authz: AS) -> None:
    authz.public_client()
    body, _ = await authz.code_flow("public-app", scope="tools:read")
    info = await authz.introspect(body["access_token"])
    demo = authz.ctx.store.get_user_by_name("demo")
    assert demo is not None
    assert info["active"] and info["sub"] == demo.id and info["aud"] == RESOURCE and info["scope"] == "tools:read"
    assert info["client_id"] == "public-app"
