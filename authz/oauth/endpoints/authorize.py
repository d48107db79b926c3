"""The authorization endpoint (RFC 6749 §3.1) with sign-in and consent.

Errors found before the client and its redirect URI are validated are shown on a page and never
redirected (RFC 6749 §4.1.2.1: "the authorization server SHOULD inform the resource owner of the
error and MUST NOT automatically redirect the user-agent to the invalid redirection URI"); later
errors redirect with ``error`` and ``state``. RFC 9207 §2: the response "MUST" carry ``iss`` when
the server advertises ``authorization_response_iss_parameter_supported`` — on every redirect,
errors included.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio.to_thread
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from authz.context import Context
from authz.identity.console_roles import CONSOLE_CLIENT_ID
from authz.identity.users import authenticate
from authz.oauth import syntax
from authz.oauth.cimd import ensure_cimd_client
from authz.oauth.consent.session import LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL, SessionCodec
from authz.oauth.consent.views import consent_page, error_page, login_page
from authz.oauth.requests import AuthzRequest
from authz.policy.engine import local_user_subject
from authz.storage.models import Consent, User

log = logging.getLogger("authz.authorize")
# A malformed value here rules out an error redirect (RFC 6749 §4.1.2.1; state could not be echoed).
UNREDIRECTABLE = frozenset({"client_id", "redirect_uri", "state"})


async def authorize(request: Request) -> Response:
    return await _continue(request, request.url.query)


async def login(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    form = await request.form()
    query = str(form.get("request", ""))
    codec = SessionCodec(ctx.keyring)
    if not codec.check_csrf(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf_token", ""))):
        return error_page(request, "invalid_request", "The sign-in form expired. Start again from the application.")
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    user = await anyio.to_thread.run_sync(authenticate, ctx.store, username, password)
    if user is None:
        ctx.audit.record("login.failed", "failure", reason="bad_credentials", ip=_ip(request))
        validated = await _validate(request, query)
        if not isinstance(validated, tuple):
            return validated
        grant = validated[1]
        binding = request.cookies.get(LOGIN_COOKIE) or ""
        return login_page(
            request,
            ctx.settings.path_prefix,
            grant.request.client.client_name,
            query,
            codec.csrf_token(binding),
            error="Wrong username or password.",
            redirect_uri=grant.redirect_uri,
        )
    ctx.audit.record("login.succeeded", subject=user.id, ip=_ip(request))
    response = RedirectResponse(ctx.settings.endpoint("/authorize?" + query), status_code=303)
    _set_session(response, ctx, user)
    return response


async def consent(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    form = await request.form()
    query = str(form.get("request", ""))
    codec = SessionCodec(ctx.keyring)
    session = codec.decode(request.cookies.get(SESSION_COOKIE))
    if session is None or not codec.check_csrf(session.sid, str(form.get("csrf_token", ""))):
        return error_page(request, "invalid_request", "The consent form expired. Start again from the application.")
    user = await anyio.to_thread.run_sync(ctx.store.get_user, session.user_id)
    validated = await _validate(request, query)
    if not isinstance(validated, tuple):
        return validated
    areq, grant = validated
    if user is None or form.get("decision") != "approve":
        ctx.audit.record(
            "consent.denied",
            "failure",
            client_id=areq.client.client_id,
            subject=session.user_id,
            resource=areq.resource,
            reason="access_denied",
        )
        return await _respond(request, areq, grant, None)
    previous = await anyio.to_thread.run_sync(ctx.store.get_consent, user.id, areq.client.client_id, str(areq.resource))
    scopes = set(areq.granted_scope.split()) | set(previous.scope.split() if previous else ())
    await anyio.to_thread.run_sync(
        ctx.store.put_consent,
        Consent(
            user_id=user.id,
            client_id=areq.client.client_id,
            resource=str(areq.resource),
            scope=" ".join(sorted(scopes)),
            created_at=int(time.time()),
        ),
    )
    ctx.audit.record(
        "consent.granted",
        client_id=areq.client.client_id,
        subject=user.id,
        resource=areq.resource,
        scope=areq.granted_scope,
    )
    return await _respond(request, areq, grant, user)


async def _continue(request: Request, query: str) -> Response:
    ctx: Context = request.app.state.ctx
    validated = await _validate(request, query)
    if not isinstance(validated, tuple):
        return validated
    areq, grant = validated
    codec = SessionCodec(ctx.keyring)
    session = codec.decode(request.cookies.get(SESSION_COOKIE))
    user = await anyio.to_thread.run_sync(ctx.store.get_user, session.user_id) if session else None
    fresh_session = False
    if user is None and ctx.settings.dev_mode:
        user = await anyio.to_thread.run_sync(_dev_user, ctx)
        fresh_session = True
    if user is None:
        binding = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        name = areq.client.client_name or areq.client.client_id
        page = login_page(
            request, ctx.settings.path_prefix, name, query, codec.csrf_token(binding), redirect_uri=grant.redirect_uri
        )
        page.set_cookie(LOGIN_COOKIE, binding, max_age=1800, httponly=True, samesite="lax", secure=_secure(ctx))
        return page
    client, resource = areq.client, str(areq.resource)
    # Ask consent only for what policy lets this user delegate (the code is narrowed again when issued).
    decision = (
        None  # the console's scopes follow the user's console role (the grant applies it), not Cedar
        if resource == ctx.settings.console_resource
        else ctx.policy.decide(
            local_user_subject(user), client.client_id, resource, areq.granted_scope.split(), "authorization_code"
        )
    )
    if decision is not None:
        permitted = [s for s in areq.granted_scope.split() if s in decision.permitted]
        if areq.granted_scope and not permitted:
            return await _respond(request, areq, grant, user)  # the grant refuses: invalid_scope redirect
        areq.granted_scope = " ".join(permitted)
    remembered = await anyio.to_thread.run_sync(ctx.store.get_consent, user.id, client.client_id, resource)
    covered = remembered is not None and set(areq.granted_scope.split()) <= set(remembered.scope.split())
    response: Response
    first_party = client.client_id == CONSOLE_CLIENT_ID and resource == ctx.settings.console_resource
    if ctx.settings.dev_mode or covered or first_party:  # this server's own console asks no consent
        response = await _respond(request, areq, grant, user)
    else:
        assert session is not None
        info = ctx.directory.resource(resource)
        response = consent_page(
            request,
            username=user.username,
            client_id=client.client_id,
            client_name=client.client_name,
            redirect_uri=grant.redirect_uri,
            resource=resource,
            resource_name=info.name if info else "",
            scopes=areq.granted_scope.split(),
            query=query,
            csrf=codec.csrf_token(session.sid),
            prefix=ctx.settings.path_prefix,
        )
    if fresh_session:
        _set_session(response, ctx, user)
    return response


async def _validate(request: Request, query: str) -> tuple[AuthzRequest, Any] | Response:
    """Validate the authorization request; an error becomes a page or an error redirect."""
    ctx: Context = request.app.state.ctx
    items = parse_qsl(query, keep_blank_values=False)
    areq = AuthzRequest("GET", ctx.settings.endpoint("/authorize"), request.headers, query=items)
    server = request.app.state.server
    bad = syntax.malformed(items)
    if bad in UNREDIRECTABLE:
        return error_page(request, "invalid_request", f"The {bad} parameter is malformed.")
    try:
        await ensure_cimd_client(ctx, areq.args.get("client_id"))
        if bad is not None:
            error = syntax.syntax_error(bad)
            error.redirect_uri = await anyio.to_thread.run_sync(server.error_redirect_uri, areq)
            raise error
        grant = await anyio.to_thread.run_sync(server.get_consent_grant, areq)
    except OAuth2Error as error:
        if error.redirect_uri:
            error.state = areq.payload.state
            _, _, headers = error()
            return _redirect(request, dict(headers)["Location"])
        return error_page(request, error.error, error.description or "The request is invalid.")
    except Exception:
        log.exception("authorization request validation failed")
        return error_page(request, "server_error", "The server encountered an unexpected condition.", 500)
    return areq, grant


async def _respond(request: Request, areq: AuthzRequest, grant: Any, user: User | None) -> Response:
    server = request.app.state.server
    status, _, headers = await anyio.to_thread.run_sync(
        lambda: server.create_authorization_response(areq, grant_user=user, grant=grant)
    )
    location = dict(headers).get("Location")
    if status != 302 or not location:
        return error_page(request, "server_error", "The authorization could not be completed.", 500)
    return _redirect(request, location)


def _redirect(request: Request, location: str) -> RedirectResponse:
    """The redirect to the client, with RFC 9207 ``iss``; 303 after a form POST.

    RFC 9700 §4.12: "The AS which redirects a request that potentially contains user credentials
    therefore MUST NOT use the HTTP 307 status code for redirection. If an HTTP redirection (and
    not, for example, JavaScript) is used for such a request, AS SHOULD use HTTP status code 303
    "See Other"." The sign-in and consent forms are such requests; ``GET /authorize`` keeps 302.
    """
    ctx: Context = request.app.state.ctx
    return RedirectResponse(
        add_params_to_uri(location, [("iss", ctx.settings.issuer)]),
        status_code=303 if request.method == "POST" else 302,
        headers={"Cache-Control": "no-store"},
    )


def _set_session(response: Response, ctx: Context, user: User) -> None:
    cookie = SessionCodec(ctx.keyring).encode(user.id)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_TTL, httponly=True, samesite="lax", secure=_secure(ctx))


def _dev_user(ctx: Context) -> User:
    from authz.compliance.vault import SubjectVault
    from authz.identity.users import create_user

    user = ctx.store.get_user_by_name(ctx.settings.dev_user)
    if user is not None:
        return user
    profiles = SubjectVault(ctx.store.engine, ctx.keyring)  # type: ignore[attr-defined]
    return create_user(ctx.store, ctx.settings.dev_user, None, profiles=profiles)


def _secure(ctx: Context) -> bool:
    return ctx.settings.issuer.startswith("https://")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


__all__ = ["authorize", "consent", "login", "urlencode"]
