"""Rendering of the sign-in, consent and error pages (no protocol decisions here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from authz.core.settings import is_loopback_url

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def csp(redirect_uri: str | None) -> str:
    """The pages' Content-Security-Policy. Browsers apply ``form-action`` to the redirects that follow a
    form post too, so the (already validated) client redirect URI's origin must be allowed there."""
    targets = "'self'"
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        targets += f" {parts.scheme}://{parts.netloc}" if parts.netloc else f" {parts.scheme}:"
    return f"default-src 'none'; style-src 'unsafe-inline'; form-action {targets}; frame-ancestors 'none'"


def page(
    request: Request, name: str, context: dict[str, Any], status: int = 200, redirect_uri: str | None = None
) -> HTMLResponse:
    headers = {**PAGE_HEADERS, "Content-Security-Policy": csp(redirect_uri)}
    response = templates.TemplateResponse(request, name, context, status_code=status, headers=headers)
    assert isinstance(response, HTMLResponse)
    return response


def login_page(
    request: Request,
    prefix: str,
    client_name: str,
    query: str,
    csrf: str,
    error: str | None = None,
    redirect_uri: str | None = None,
) -> HTMLResponse:
    ctx = {
        "client_name": client_name,
        "request_query": query,
        "csrf_token": csrf,
        "error": error,
        "action": prefix + "/authorize/login",
    }
    return page(request, "login.html", ctx, status=401 if error else 200, redirect_uri=redirect_uri)


def consent_page(
    request: Request,
    *,
    username: str,
    client_id: str,
    client_name: str,
    redirect_uri: str,
    resource: str,
    resource_name: str,
    scopes: list[str],
    query: str,
    csrf: str,
    prefix: str,
) -> HTMLResponse:
    """MCP 2026-07-28 (client ID metadata documents): the server "MUST clearly display the redirect
    URI hostname" and "SHOULD display additional warnings for localhost-only redirect URIs"."""
    host = urlsplit(redirect_uri).netloc
    ctx = {
        "username": username,
        "client_id": client_id,
        "client_name": client_name or client_id,
        "redirect_host": host,
        "localhost_redirect": is_loopback_url(redirect_uri),
        "resource": resource,
        "resource_name": resource_name,
        "scopes": scopes,
        "request_query": query,
        "csrf_token": csrf,
        "action": prefix + "/authorize/consent",
    }
    return page(request, "consent.html", ctx, redirect_uri=redirect_uri)


def error_page(request: Request, error: str, description: str, status: int = 400) -> HTMLResponse:
    response = page(request, "error.html", {"error": error, "description": description}, status=status)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'"
    return response
