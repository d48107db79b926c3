"""Sign-in to the console through this authorization server, and sign-out that really ends it.

The console is a public OAuth client of its own server (RFC 6749 §4.1 authorization code, RFC 7636
PKCE with S256, RFC 8707 ``resource`` = the console audience). RFC 9700 §2.1.1: clients "MUST" use
PKCE or other CSRF protection and the ``state`` is bound to the browser (the sign-in cookie holds
it with the verifier). RFC 9207 §2.4: when the server returns ``iss`` the client "MUST" compare it
with the issuer it sent the request to; a mismatch is refused. The code is exchanged in-process
(the same Authlib core as ``/token``); the access token is verified like any other (signature,
audience, revocation) and never leaves the server: the browser gets a session cookie instead.

Sign-out revokes the sign-in's grant (every token of it dies at once, on every replica) — unlike
consoles whose sign-out leaves outstanding tokens alive until they expire — and clears both the
console cookie and the server's sign-in cookie.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from urllib.parse import urlencode

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authz.console.bootstrap import redirect_uri
from authz.console.session import SESSION_COOKIE, SESSION_TTL, SIGNIN_COOKIE, SIGNIN_TTL, Codec
from authz.console.web import HEADERS, Viewer, ctx_of, handler, prefix, render
from authz.context import Context
from authz.identity.console_roles import CONSOLE_CLIENT_ID, CONSOLE_SCOPES
from authz.identity.revocations import revoke_grant
from authz.oauth.consent.session import SESSION_COOKIE as AS_SESSION_COOKIE
from authz.oauth.requests import AuthzRequest
from authz.oauth.server import run_core
from authz.oauth.token_checks import active_claims

log = logging.getLogger("authz.console")


def _secure(ctx: Context) -> bool:
    return ctx.settings.issuer.startswith("https://")


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    secure, path = _secure(ctx_of(request)), prefix(request)
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path=path)


def _safe_next(request: Request, value: str | None) -> str:
    base = prefix(request)
    if value and value.startswith(base + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return base + "/"


async def login(request: Request) -> Response:
    """Start the authorization code flow (a plain redirect: works without JavaScript)."""
    ctx = ctx_of(request)
    cookie, signin = Codec(ctx.keyring).signin(_safe_next(request, request.query_params.get("next")))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(signin.verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CONSOLE_CLIENT_ID,
            "redirect_uri": redirect_uri(ctx.settings),
            "scope": " ".join(CONSOLE_SCOPES),
            "resource": ctx.settings.console_resource,
            "state": signin.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(ctx.settings.endpoint("/authorize?" + query), 303, headers=HEADERS)
    _cookie(request, response, SIGNIN_COOKIE, cookie, SIGNIN_TTL)
    return response


async def callback(request: Request) -> Response:
    ctx = ctx_of(request)
    q = request.query_params
    signin = Codec(ctx.keyring).decode_signin(request.cookies.get(SIGNIN_COOKIE))
    if signin is None or q.get("state") != signin.state:
        return _failed(request, "The sign-in expired or did not start here. Sign in again.")
    if q.get("iss") != ctx.settings.issuer:
        return _failed(request, "The sign-in answer came from another issuer; it was refused.")
    if q.get("error"):
        if q.get("error") == "invalid_scope":
            return _failed(request, "Your account has no console role. Ask an administrator to add you.", 403)
        return _failed(request, f"The sign-in was refused ({q.get('error')}).")
    form = [
        ("grant_type", "authorization_code"),
        ("code", q.get("code", "")),
        ("redirect_uri", redirect_uri(ctx.settings)),
        ("client_id", CONSOLE_CLIENT_ID),
        ("code_verifier", signin.verifier),
    ]
    areq = AuthzRequest("POST", ctx.settings.endpoint("/token"), {}, form=form)
    status, body, _ = await run_core(request.app.state.server.create_token_response, areq, inline=False)
    token = body.get("access_token") if status == 200 and isinstance(body, dict) else None
    claims = (
        await anyio.to_thread.run_sync(
            active_claims, ctx.issuer, ctx.revocations, ctx.directory, str(token), ctx.settings.console_resource
        )
        if token
        else None
    )
    user = await anyio.to_thread.run_sync(ctx.store.get_user, str(claims.get("sub"))) if claims else None
    if claims is None or user is None:
        return _failed(request, "The sign-in could not be completed. Sign in again.")
    cookie, session = Codec(ctx.keyring).session(user.id, user.username, claims)
    ctx.audit.record("console.signed_in", subject=user.id, username=user.username, scope=" ".join(session.scopes))
    response = RedirectResponse(_safe_next(request, signin.next_path), 303, headers=HEADERS)
    _cookie(request, response, SESSION_COOKIE, cookie, SESSION_TTL)
    response.delete_cookie(SIGNIN_COOKIE, path=prefix(request))
    return response


@handler()
async def logout(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    now = int(time.time())
    await anyio.to_thread.run_sync(revoke_grant, ctx, viewer.session.sid, now)
    ctx.revocations.revoke("jti", viewer.session.jti, viewer.session.expires_at)
    ctx.audit.record("console.signed_out", subject=viewer.session.user_id, actor=viewer.actor)
    response = render(request, "signed_out.html", {"title": "Signed out"})
    response.delete_cookie(SESSION_COOKIE, path=prefix(request))
    response.delete_cookie(AS_SESSION_COOKIE)
    return response


def _failed(request: Request, message: str, status: int = 400) -> Response:
    response = render(request, "error.html", {"title": "Sign-in failed", "message": message, "signin": True}, status)
    response.delete_cookie(SIGNIN_COOKIE, path=prefix(request))
    return response
