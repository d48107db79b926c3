"""Errors and the HTTP challenges that answer them (RFC 6750 §3, RFC 9728 §5.1, MCP 2026-07-28).

RFC 6750 §3 (The WWW-Authenticate Response Header Field):

    If the protected resource request does not include authentication credentials or does not
    contain an access token that enables access to the protected resource, the resource server
    MUST include the HTTP "WWW-Authenticate" response header field [...] If the request lacks any
    authentication information (e.g., the client was unaware that authentication is necessary or
    attempted using an unsupported authentication method), the resource server SHOULD NOT include
    an error code or other error information.

RFC 6750 §3.1 error codes: ``invalid_request`` (400), ``invalid_token`` (401),
``insufficient_scope`` (403, "The resource server SHOULD respond with the HTTP 403 (Forbidden)
status code and MAY include the "scope" attribute with the scope necessary to access the
protected resource").

RFC 9728 §5.1: "resource_metadata: The URL of the protected resource metadata" is added to the
``WWW-Authenticate`` challenge so clients can discover the authorization server.

MCP authorization 2026-07-28 (scope challenges): when a token lacks scopes, the server SHOULD
answer ``403`` with ``error="insufficient_scope"`` and a ``scope`` naming the scopes the *current
operation* needs — all of them in one challenge, not incrementally — and the client requests the
union of its previous and the challenged scopes.

Public text only: nothing here ever contains the presented token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import Send

__all__ = [
    "HEADER_MISMATCH",
    "AuthError",
    "HttpResponse",
    "InvalidRequest",
    "InvalidToken",
    "UpstreamUnavailable",
    "bad_request",
    "challenge",
    "header_mismatch",
    "insufficient_scope",
    "invalid_token",
    "unauthenticated",
    "unavailable",
]


class AuthError(Exception):
    """Base class: ``description`` is public text, safe for a response body."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidToken(AuthError):
    """The token is invalid, expired, revoked, or not for this resource (401 invalid_token)."""


class InvalidRequest(AuthError):
    """The request is malformed (400 invalid_request)."""


class UpstreamUnavailable(AuthError):
    """The authorization server (metadata, JWKS or introspection) cannot be used: 503, never a pass."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A small complete HTTP response, sent straight over ASGI."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    async def send(self, send: Send, *, head: bool = False) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    *,
    resource_metadata: str,
    scopes: Iterable[str] = (),
    error: str | None = None,
    description: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate: Bearer ...`` value (RFC 6750 §3 auth-params)."""
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
        if description:
            params.append(("error_description", description))
    scope = " ".join(sorted(set(scopes)))
    if scope:
        params.append(("scope", scope))
    params.append(("resource_metadata", resource_metadata))
    return "Bearer " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


def _json_error(
    status: int, error: str, description: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> HttpResponse:
    body = json.dumps({"error": error, "error_description": description}).encode()
    headers = (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        *extra_headers,
    )
    return HttpResponse(status, headers, body)


def unauthenticated(*, resource_metadata: str, scopes: Iterable[str]) -> HttpResponse:
    """401 for a request without credentials: no error code (RFC 6750 §3)."""
    www = challenge(resource_metadata=resource_metadata, scopes=scopes)
    body = json.dumps({"error": "unauthorized", "error_description": "Bearer access token required"}).encode()
    return HttpResponse(
        401,
        (("content-type", "application/json"), ("cache-control", "no-store"), ("www-authenticate", www)),
        body,
    )


def invalid_token(description: str, *, resource_metadata: str, scopes: Iterable[str]) -> HttpResponse:
    www = challenge(resource_metadata=resource_metadata, scopes=scopes, error="invalid_token", description=description)
    return _json_error(401, "invalid_token", description, [("www-authenticate", www)])


def insufficient_scope(*, resource_metadata: str, scopes: Iterable[str]) -> HttpResponse:
    """403 naming exactly the scopes the current operation needs (MCP 2026-07-28)."""
    needed = sorted(set(scopes))
    description = "This operation requires scope: " + " ".join(needed)
    www = challenge(
        resource_metadata=resource_metadata, scopes=needed, error="insufficient_scope", description=description
    )
    return _json_error(403, "insufficient_scope", description, [("www-authenticate", www)])


def bad_request(description: str, *, resource_metadata: str) -> HttpResponse:
    www = challenge(resource_metadata=resource_metadata, error="invalid_request", description=description)
    return _json_error(400, "invalid_request", description, [("www-authenticate", www)])


PARSE_ERROR = -32700  # JSON-RPC 2.0 §5.1: "Invalid JSON was received by the server."


def parse_error(description: str) -> HttpResponse:
    """400 with the JSON-RPC 2.0 parse error (§5.1: code -32700, ``id`` null: "If there was an error in
    detecting the id in the Request object (e.g. Parse error/Invalid Request), it MUST be Null").

    Sent before the token check for a body nested too deeply to parse safely; no challenge, since
    the credentials are not the problem.
    """
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": description}})
    return HttpResponse(400, (("content-type", "application/json"), ("cache-control", "no-store")), body.encode())


HEADER_MISMATCH = -32020  # MCP 2026-07-28 (SEP-2243): Mcp-* headers disagree with the body


def header_mismatch(description: str, request_id: str | int | None) -> HttpResponse:
    """400 with the JSON-RPC error MCP defines for routing headers that disagree with the body.

    It is what the MCP server itself would answer (the SDK uses the same code), so a client sees
    one behaviour whether the middleware or the server catches the mismatch. No challenge: the
    credentials are not the problem.
    """
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": HEADER_MISMATCH, "message": description}}
    ).encode()
    return HttpResponse(400, (("content-type", "application/json"), ("cache-control", "no-store")), body)


def unavailable(retry_after: int) -> HttpResponse:
    return _json_error(
        503,
        "temporarily_unavailable",
        "The authorization server cannot be reached; retry later",
        [("retry-after", str(retry_after))],
    )
