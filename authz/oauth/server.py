"""The one Authlib <-> Starlette adapter.

Endpoints await the request body first, build an :class:`~authz.oauth.requests.AuthzRequest`, and call
Authlib's synchronous core through :func:`run_core`: inline for grants whose storage reads are all
served from memory (client_credentials, introspection), in a worker thread for grants that read
and write SQL (authorization_code, refresh_token). Authlib's ``(status, body, headers)`` results
become Starlette responses in :func:`to_response`; nothing else imports both libraries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

import anyio.to_thread
from authlib.oauth2.rfc6749 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from authz.context import Context
from authz.core.fetch import get_fetcher
from authz.identity.clients import OAuthClient
from authz.oauth import syntax
from authz.oauth.cimd import ClientJwks
from authz.oauth.client_auth import PrivateKeyJwt, unverified_issuer
from authz.oauth.dpop import TokenEndpointDpop
from authz.oauth.endpoints.exchange_fast import TokenExchangeFastPath
from authz.oauth.endpoints.token_fast import ClientCredentialsFastPath
from authz.oauth.grants.authorization_code import AuthorizationCodeGrant
from authz.oauth.grants.client_credentials import ClientCredentialsGrant
from authz.oauth.grants.jwt_bearer import JwtBearerGrant
from authz.oauth.grants.refresh_token import RefreshTokenGrant
from authz.oauth.grants.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from authz.oauth.grants.token_exchange import TokenExchangeGrant, exchange_can_run_inline
from authz.oauth.replay import replay_cache
from authz.oauth.requests import AuthzRequest, parse_form
from authz.oauth.rfc7009 import RevocationEndpoint
from authz.oauth.rfc7662 import IntrospectionEndpoint
from authz.oauth.trust import TrustedIssuers, TrustStore

log = logging.getLogger("authz.server")

MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INLINE_GRANTS = frozenset({"client_credentials", TOKEN_EXCHANGE})

Result = tuple[int, Any, list[tuple[str, str]]]
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(separators=...) without a new encoder per call


class AuthzServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's AuthorizationServer bound to our context (storage, keys, caches, audit)."""

    def __init__(self, ctx: Context, jwks_for: ClientJwks) -> None:
        super().__init__(scopes_supported=None)
        self.ctx = ctx
        self._jwks_for = jwks_for
        # SqlStore implements TrustStore (authz.storage.sql_trust); Storage does not name it.
        self.trust = TrustedIssuers(
            cast(TrustStore, ctx.store), get_fetcher(ctx.settings.cimd_allow_loopback), ctx.settings.cache_staleness
        )
        audiences = frozenset({ctx.settings.issuer, ctx.settings.endpoint("/token")})
        self.private_key_jwt = PrivateKeyJwt(audiences, replay_cache(ctx.settings, ctx.store, "authz:jti:"), jwks_for)
        self.register_client_auth_method("private_key_jwt", self.private_key_jwt)
        self.fast_client_credentials = ClientCredentialsFastPath(ctx, self.private_key_jwt, jwks_for.ready)
        self.fast_exchange = TokenExchangeFastPath(ctx, encode_json_result)
        self.register_grant(AuthorizationCodeGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_grant(JwtBearerGrant)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)
        self.dpop = TokenEndpointDpop(ctx.settings, ctx.keyring, replay_cache(ctx.settings, ctx.store))

    def can_run_inline(self, areq: AuthzRequest) -> bool:
        """Whether the token request can run on the event loop: a memory-only grant, and no client
        key set to fetch first (a ``private_key_jwt`` client whose ``jwks_uri`` is not cached)."""
        grant_type = areq.form.get("grant_type")
        if grant_type not in INLINE_GRANTS:
            return False
        if grant_type == TOKEN_EXCHANGE and not exchange_can_run_inline(
            areq.form, self.trust, self.ctx.settings.issuer
        ):
            return False
        assertion = areq.form.get("client_assertion")
        if not assertion:
            return True
        try:
            client = self.ctx.directory.client(unverified_issuer(assertion))
        except OAuth2Error:
            return True  # refused without any I/O
        return client is None or self._jwks_for.ready(client)

    def query_client(self, client_id: str) -> OAuthClient | None:
        return self.ctx.directory.client(client_id)

    def error_redirect_uri(self, request: AuthzRequest) -> str | None:
        """Where an authorization error found before Authlib's validation may be sent: the request's
        redirect URI once the client exists and has it registered, else None (show a page).

        RFC 6749 §4.1.2.1: "If the request fails due to a missing, invalid, or mismatching
        redirection URI, or if the client identifier is missing or invalid, the authorization server
        SHOULD inform the resource owner of the error and MUST NOT automatically redirect the
        user-agent to the invalid redirection URI." Repeated parameters count as invalid.
        """
        datalist = request.payload.datalist
        if any(len(datalist.get(name, [])) > 1 for name in ("client_id", "redirect_uri", "state")):
            return None
        client_id, redirect_uri = request.payload.client_id, request.payload.redirect_uri
        client = self.query_client(client_id) if client_id else None
        if client is None:
            return None
        if redirect_uri:
            return redirect_uri if client.check_redirect_uri(redirect_uri) else None
        default: str | None = client.get_default_redirect_uri()
        return default

    def authenticate_client(self, request: AuthzRequest, methods: list[str], endpoint: str = "token") -> Any:
        """Authlib's client authentication, with a readable refusal (its own shows a Python list).

        RFC 6749 §2.3.1 / RFC 7617 §2: Basic credentials are the base64 of ``client_id:secret``. Authlib
        decodes them without catching a header that is not ASCII or is base64 of bytes that are not
        UTF-8 (a ``ValueError``): such credentials are as unusable as a wrong secret, so the refusal
        is the same ``invalid_client`` (RFC 6749 §5.2; 401 where Basic was allowed)."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except ValueError:
            raise InvalidClientError(
                status_code=401 if "client_secret_basic" in methods else 400,
                description=f"The client cannot authenticate with {' or '.join(methods)}.",
            ) from None
        except InvalidClientError as error:
            if str(error.description).startswith("The client cannot authenticate with method"):
                error.description = f"The client cannot authenticate with {' or '.join(methods)}."
            raise

    def save_token(self, token: Any, request: Any) -> None:  # tokens are persisted by the grants
        return None

    def create_oauth2_request(self, request: AuthzRequest) -> AuthzRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Result:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


async def read_body(receive: Receive) -> bytes:
    """The whole request body from ASGI ``receive`` (what ``Request.body()`` does, without the stream
    machinery); :class:`~starlette.requests.ClientDisconnect` when the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_request(request: Request, ctx: Context, *, form: bool = True, body: bytes | None = None) -> AuthzRequest:
    """Await and parse the body (``application/x-www-form-urlencoded`` only, RFC 6749 §3.2); ``body``
    when the caller has already read it from ``receive``."""
    items: list[tuple[str, str]] = []
    if form and request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise InvalidRequestError("The request body must be application/x-www-form-urlencoded.")
        if body is None:
            body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError("The request body is too large.")
        try:
            items = parse_form(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidRequestError("The request body is not UTF-8.") from exc
    raw_query = request.scope.get("query_string", b"")
    query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=False) if raw_query else []
    syntax.check([*query, *items])
    uri = ctx.settings.issuer + request.scope["path"][len(request.scope.get("root_path", "")) :]
    areq = AuthzRequest(request.method, uri, request.headers, query=query, form=items)
    areq.client_ip = request.client.host if request.client else None
    return areq


async def run_core(fn: Callable[[AuthzRequest], Result], areq: AuthzRequest, inline: bool) -> Result:
    """Run Authlib's synchronous core: inline when it only touches memory, else in a worker thread."""
    if inline:
        return fn(areq)
    return await anyio.to_thread.run_sync(fn, areq)


def error_result(error: OAuth2Error) -> Result:
    status, body, headers = error()
    return int(status), body, list(headers)


def to_response(result: Result) -> Response:
    status, body, headers = result
    hdrs = {k: v for k, v in headers if k.lower() != "content-type"}
    if status == 302:
        return Response(status_code=302, headers=hdrs)
    if isinstance(body, dict | list):
        return Response(json.dumps(body, separators=(",", ":")), status, hdrs, media_type="application/json")
    return Response(body or "", status, hdrs)


def encode_json_result(result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """A JSON result as ASGI status, raw headers and body bytes — exactly what :func:`to_response`'s
    ``Response`` would send (its headers lowercased, then ``content-length`` and ``content-type``);
    None for anything else (a redirect, a text body: :func:`to_response` answers those)."""
    status, body, headers = result
    if status < 200 or status in (204, 302, 304) or not isinstance(body, dict | list):
        return None
    data = _ENCODE(body).encode("utf-8")
    hdrs = {k: v for k, v in headers if k.lower() != "content-type"}
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()]
    if not any(k == b"content-length" for k, _ in raw):
        raw.append((b"content-length", str(len(data)).encode("latin-1")))
    raw.append((b"content-type", b"application/json"))
    return status, raw, data


def server_error() -> JSONResponse:
    """Anything unexpected: a generic body; the detail is only in the log (logged by the caller)."""
    return JSONResponse(
        {"error": "server_error", "error_description": "The server encountered an unexpected condition."},
        status_code=500,
        headers=NO_STORE,
    )
