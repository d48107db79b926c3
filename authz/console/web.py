"""Rendering and guards for every console page: templates, security headers, who is signed in, CSRF.

Headers on every answer: a strict Content-Security-Policy (scripts and styles from this origin only,
no ``unsafe-inline``, no ``unsafe-eval``; ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``,
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer``, ``Vary: HX-Request`` (htmx asks for
partials with that header; a plain browser gets the whole page from the same URL).

:func:`handler` wraps a page: it resolves the signed-in person (else redirects to sign-in), checks
the scope the page or action needs (403 page otherwise: nothing changes), and for POSTs the CSRF
token (a MAC of the session's grant id, in the form or the ``X-CSRF-Token`` header htmx sends).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from authz.console.session import SESSION_COOKIE, Codec, ConsoleSession
from authz.context import Context
from authz.core.settings import CONSOLE_PATH
from authz.identity.console_roles import READ, ROLES, role_for_scopes, role_of

log = logging.getLogger("authz.console")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _iso(ts: int | None) -> str:
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


templates.env.filters["iso"] = _iso
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Vary": "HX-Request",
}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person: effective scopes = the token's scopes that their current role still allows."""

    session: ConsoleSession
    scopes: frozenset[str]
    csrf: str

    @property
    def actor(self) -> str:
        """How audit records name the person: ``console:<username>``."""
        return f"console:{self.session.username}"

    @property
    def role(self) -> str:
        return role_for_scopes(sorted(self.scopes))

    def may(self, scope: str) -> bool:
        return scope in self.scopes


class Forbidden(Exception):
    """The signed-in person's role does not allow this (403 page, nothing changed)."""


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def prefix(request: Request) -> str:
    return ctx_of(request).settings.path_prefix + CONSOLE_PATH


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    data = {"base": prefix(request), "htmx": request.headers.get("hx-request") == "true", **context}
    response = templates.TemplateResponse(request, name, data, status_code=status, headers=HEADERS)
    assert isinstance(response, HTMLResponse)
    return response


def fail(request: Request, viewer: Viewer | None, title: str, message: str, status: int) -> HTMLResponse:
    return render(request, "error.html", {"me": viewer, "title": title, "message": message}, status)


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 to a console path (after a POST the browser GETs the result: no resubmission on reload)."""
    return RedirectResponse(prefix(request) + path, status_code=303, headers=HEADERS)


def load_viewer(request: Request) -> Viewer | None:
    ctx = ctx_of(request)
    codec = Codec(ctx.keyring)
    session = codec.decode_session(request.cookies.get(SESSION_COOKIE))
    if session is None or ctx.revocations.token_revoked(session.claims()):
        return None
    user = ctx.store.get_user(session.user_id)
    if user is None or user.disabled:
        return None
    allowed = set(ROLES.get(role_of(ctx.settings, user.username, user.groups or ()) or "", ()))
    scopes = frozenset(s for s in session.scopes if s in allowed)
    if READ not in scopes:
        return None
    return Viewer(session=session, scopes=scopes, csrf=codec.csrf(session.sid))


Page = Callable[[Request, Viewer], Awaitable[Response]]


def handler(scope: str = READ) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """Wrap a page or an action that needs ``scope``."""

    def wrap(page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = await anyio.to_thread.run_sync(load_viewer, request)
            if viewer is None:
                if request.method != "GET":
                    return render(request, "error.html", {"title": "Signed out", "message": SIGNED_OUT}, 401)
                target = quote(request.url.path + (("?" + request.url.query) if request.url.query else ""))
                return RedirectResponse(f"{prefix(request)}/login?next={target}", 303, headers=HEADERS)
            if request.method == "POST":
                form = await request.form()
                token = request.headers.get("x-csrf-token") or form.get("csrf_token")
                if not Codec(ctx_of(request).keyring).check_csrf(viewer.session.sid, str(token or "")):
                    return render(request, "error.html", {"title": "Form expired", "message": CSRF, "me": viewer}, 403)
            try:
                if not viewer.may(scope):
                    raise Forbidden
                return await page(request, viewer)
            except Forbidden:
                message = f"Your role ({viewer.role}) does not allow this; it needs {scope}. Nothing was changed."
                return render(request, "error.html", {"title": "Not allowed", "message": message, "me": viewer}, 403)

        endpoint.__name__ = page.__name__
        return endpoint

    return wrap


SIGNED_OUT = "Your console session has ended. Sign in again; nothing was changed."
CSRF = "This form has expired or did not come from the console. Reload the page and try again; nothing was changed."
