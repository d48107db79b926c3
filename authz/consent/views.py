"""Rendering of the sign-in, consent and error pages (no protocol decisions here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from authz.settings import is_loopback_url

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status, headers=PAGE_HEADERS)
    assert isinstance(response, HTMLResponse)
    return response


def login_page(
    request: Request, prefix: str, client_name: str, query: str, csrf: str, error: str | None = None
) -> HTMLResponse:
    ctx = {
        "client_name": client_name,
        "request_query": query,
        "csrf_token": csrf,
        "error": error,
        "action": prefix + "/authorize/login",
    }
    return page(request, "login.html", ctx, status=401 if error else 200)


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
    return page(request, "consent.html", ctx)


def error_page(request: Request, error: str, description: str, status: int = 400) -> HTMLResponse:
    return page(request, "error.html", {"error": error, "description": description}, status=status)
