"""Pure ASGI middleware that makes any ASGI app an OAuth 2.1 protected resource.

Per request on a protected path: refuse tokens outside the ``Authorization`` header, read the
JSON-RPC body once (and replay it to the app unchanged), work out the scopes this operation
needs, validate the bearer token, check the scopes, ask the token-use hook, then call the app
with the identity bound (``current_token()``, ``scope["user"]``, ``scope["auth"]``). Responses
stream through untouched (SSE included). The RFC 9728 metadata routes are served here, unauthenticated.

MCP 2026-07-28, token handling: "MCP servers MUST validate access tokens [...] MUST only accept
tokens valid for its own resources" and "Invalid or expired tokens MUST receive a HTTP 401
response"; RFC 6750 §2: "Clients SHOULD make authenticated requests with a bearer token using
the "Authorization" request header field"; OAuth 2.1 §5.1 forbids tokens in the query string, and
MCP: "Access tokens MUST NOT be included in the URI query string".

DPoP (RFC 9449): ``Authorization: DPoP <token>`` with a ``DPoP`` proof is checked by
:mod:`resource_server.dpop` (all of it: the proof, the binding, the challenges); a DPoP-bound token
sent as ``Bearer`` is refused (§7.2).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx2
from starlette.authentication import AuthCredentials, SimpleUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.jsonload import JsonRefused
from resource_server import dpop, errors
from resource_server.context import RequestContext, TokenInfo, enter_request_context, exit_request_context
from resource_server.dpop import ReplayCache
from resource_server.errors import HttpResponse, InvalidRequest, InvalidToken, UpstreamUnavailable
from resource_server.hooks import NoopHook, TokenUseHook, UseContext, UseOutcome
from resource_server.metadata import metadata_paths, metadata_response, metadata_url
from resource_server.scopes import McpCall, check_routing_headers, parse_calls
from resource_server.settings import ResourceServerConfig
from resource_server.verifier import ConfiguredVerifier, TokenVerifier

__all__ = ["ResourceServerMiddleware", "TokenUser", "UserFactory"]

log = logging.getLogger(__name__)

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class TokenUser(SimpleUser):
    """A Starlette ``BaseUser`` carrying the validated token's facts (``request.user``)."""

    def __init__(self, token: TokenInfo) -> None:
        super().__init__(token.subject or token.client_id or "")
        self.token = token


UserFactory = Callable[[TokenInfo, str], Any]
"""Builds ``scope["user"]`` from the token facts and the raw token (the MCP adapter needs it)."""


def _default_user(info: TokenInfo, _token: str) -> Any:
    return TokenUser(info)


class _Reject(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class ResourceServerMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        config: ResourceServerConfig,
        *,
        hook: TokenUseHook | None = None,
        verifier: TokenVerifier | None = None,
        http_client: httpx2.AsyncClient | None = None,
        user_factory: UserFactory = _default_user,
        dpop_replay: ReplayCache | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.hook: TokenUseHook = hook or NoopHook()
        self._noop_hook = type(self.hook) is NoopHook  # nothing to call: skip the hook plumbing
        self._configured = ConfiguredVerifier(config, http_client)
        self.verifier: TokenVerifier = verifier or self._configured
        self._user_factory = user_factory
        # What the app sees of a verified token (scope["user"], scope["auth"]), built once per verdict.
        self._identities: dict[int, tuple[TokenInfo, str, Any, AuthCredentials]] = {}
        self._identities_max = config.cache_max_entries
        self._prm_paths = frozenset(metadata_paths(config.resource))
        self._prm_url = metadata_url(config.resource)
        # The metadata document never changes: serialise it once.
        self._prm_responses = {m: metadata_response(config, m) for m in ("GET", "HEAD", "OPTIONS")}
        self._dpop = dpop.from_config(config, dpop_replay)

    # -- plumbing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._configured.aclose()

    def _is_protected(self, path: str) -> bool:
        if path in self._prm_paths:
            return False
        if self.config.protected_paths is None:
            return True
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.config.protected_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path in self._prm_paths:
            method = scope["method"]
            response = self._prm_responses.get(method) or metadata_response(self.config, method)
            await response.send(send, head=method == "HEAD")
            return
        if not self._is_protected(path):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            # A WebSocket cannot receive an RFC 6750 challenge; refuse rather than pass it unchecked.
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            await self._protected(scope, receive, send)
        except _Reject as reject:
            await reject.response.send(send, head=scope["method"] == "HEAD")

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self.verifier is self._configured:
                self._configured.start()  # opens the revocation stream (if configured) before traffic
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
            return message

        return wrapped

    # -- the protected path -----------------------------------------------------------------

    async def _protected(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        if query and _may_name_access_token(query) and "access_token" in parse_qs(query.decode("latin-1")):
            raise _Reject(self._bad_request("Access tokens are accepted only in the Authorization header"))
        scheme, token = self._credentials(headers)

        body: bytes | None = None
        calls: tuple[McpCall, ...] = ()
        if scope["method"] == "POST":
            body = await self._read_body(receive)
            if body is None:
                return  # the client disconnected
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if (
                content_type == "application/x-www-form-urlencoded"
                and _may_name_access_token(body)
                and "access_token" in parse_qs(body.decode("latin-1"))
            ):
                raise _Reject(self._bad_request("Access tokens are accepted only in the Authorization header"))
            try:
                calls = parse_calls(body)
            except JsonRefused as exc:
                raise _Reject(errors.parse_error(f"Parse error: {exc}")) from None
            try:
                check_routing_headers(headers.get("mcp-method"), headers.get("mcp-name"), calls)
            except InvalidRequest as exc:
                request_id = calls[0].request_id if len(calls) == 1 else None
                raise _Reject(errors.header_mismatch(exc.description, request_id)) from None
        policy = self.config.scope_policy
        required = policy.required(calls)

        if token is None or (scheme == "bearer" and self.config.dpop_required):
            raise _Reject(self._unauthenticated(required))
        try:
            info = await self._verify(token)
        except InvalidToken as exc:
            log.info("rejected %s token: %s", scheme, exc.description)
            raise _Reject(
                dpop.invalid_token(
                    self._dpop, scheme, exc.description, resource_metadata=self._prm_url, scopes=required
                )
            ) from None
        except UpstreamUnavailable as exc:
            log.warning("cannot validate %s token: %s", scheme, exc.description)
            raise _Reject(errors.unavailable(self.config.retry_after)) from None
        if scheme == "dpop" or dpop.bound_jkt(info) is not None:  # a plain bearer token has nothing to check
            refused = await dpop.refusal(
                self._dpop, scope, scheme=scheme, host=headers.get("host"), token=token, info=info,
                resource_metadata=self._prm_url,
            )  # fmt: skip
            if refused is not None:
                raise _Reject(refused)

        if not policy.satisfied_by(info.scopes, required):
            raise _Reject(errors.insufficient_scope(resource_metadata=self._prm_url, scopes=required))

        use: UseContext | None = None
        if not self._noop_hook:
            use = UseContext(token=info, calls=calls, http_method=scope["method"], path=path, required_scopes=required)
            try:
                refusal = await self.hook.before(use)
            except Exception:
                log.exception("token-use hook before() failed")
                raise _Reject(errors.unavailable(self.config.retry_after)) from None
            if refusal is not None:
                raise _Reject(refusal.response())

        scope = dict(scope)
        scope["user"], scope["auth"] = self._identity(info, token)
        app_receive = receive if body is None else _replay(body, receive)
        ctx = RequestContext(token=info)
        if use is None:
            # Nothing observes the outcome: call the app directly (no send wrapper, no timing).
            reset = enter_request_context(ctx)
            try:
                await self.app(scope, app_receive, send)
            finally:
                exit_request_context(reset)
            return
        await self._call_app(scope, app_receive, send, use, ctx)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send, use: UseContext, ctx: RequestContext) -> None:
        status: int | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.monotonic()
        error: BaseException | None = None
        reset = enter_request_context(ctx)
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            error = exc
            raise
        finally:
            exit_request_context(reset)
            outcome = UseOutcome(status=status, duration=time.monotonic() - started, usage=dict(ctx.usage), error=error)
            try:
                await self.hook.after(use, outcome)
            except Exception:
                log.exception("token-use hook after() failed")

    # -- helpers ----------------------------------------------------------------------------

    def _verify(self, token: str) -> Awaitable[TokenInfo]:
        """The verifier's check (the configured one's inner verifier, without the delegating frame)."""
        verifier = self.verifier
        if verifier is self._configured:
            return self._configured.inner.verify(token)
        return verifier.verify(token)

    def _identity(self, info: TokenInfo, token: str) -> tuple[Any, AuthCredentials]:
        """``scope["user"]`` and ``scope["auth"]`` for a verified token, built once per verdict.

        The verifiers return the same :class:`TokenInfo` object for every use of a token while their
        verdict stands (memo, introspection cache), so an entry is reused only for that very object
        and that very token: a new verdict (re-verification, a refreshed cache entry) builds anew, and
        a revoked or expired token never gets past the verifier to reach this cache. Bounded; the
        oldest entry goes first.
        """
        entries = self._identities
        key = id(info)
        entry = entries.get(key)
        if entry is not None and entry[0] is info and entry[1] == token:
            return entry[2], entry[3]
        user = self._user_factory(info, token)
        auth = AuthCredentials(sorted(info.scopes))
        if len(entries) >= self._identities_max:
            del entries[next(iter(entries))]
        entries[key] = (info, token, user, auth)
        return user, auth

    def _bad_request(self, description: str) -> HttpResponse:
        return errors.bad_request(description, resource_metadata=self._prm_url)

    def _unauthenticated(self, required: Any) -> HttpResponse:
        """401 without an error code (RFC 6750 §3), with the DPoP challenge too (RFC 9449 §7.1)."""
        response = errors.unauthenticated(resource_metadata=self._prm_url, scopes=required)
        return dpop.unauthenticated(self._dpop, response, self._prm_url)

    def _credentials(self, headers: dict[str, str]) -> tuple[str, str | None]:
        """(scheme, token): ``Bearer`` (RFC 6750 §2.1) or ``DPoP`` (RFC 9449 §7.1, when enabled); the
        token is None when there are no such credentials."""
        value = headers.get("authorization")
        if value is None:
            return "", None
        if value == "\x00multiple":
            raise _Reject(self._bad_request("Multiple Authorization headers"))
        scheme, _, credentials = value.strip().partition(" ")
        scheme = scheme.lower()
        if scheme != "bearer" and (scheme != "dpop" or self._dpop is None):
            return scheme, None  # another scheme: the request lacks usable credentials, challenge it
        credentials = credentials.strip()
        if not _TOKEN68.fullmatch(credentials):
            raise _Reject(self._bad_request("Malformed Authorization header"))
        return scheme, credentials

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client disconnected; 413 beyond ``max_body_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                raise _Reject(_TOO_LARGE)
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # one message (a small JSON-RPC body): no copy
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)


_TOO_LARGE = HttpResponse(
    413,
    (("content-type", "application/json"),),
    b'{"error": "invalid_request", "error_description": "Request body too large"}',
)

_WANTED_HEADERS = {
    b"authorization": "authorization",
    b"content-type": "content-type",
    b"mcp-method": "mcp-method",
    b"mcp-name": "mcp-name",
    b"host": "host",
}


def _may_name_access_token(data: bytes) -> bool:
    """Whether a query string or form body can hold an ``access_token`` parameter (literally or
    percent-encoded): only then is it worth parsing."""
    return b"access_token" in data or b"%" in data


def _headers(scope: Scope) -> dict[str, str]:
    """The few request headers the middleware reads, decoded once (others are left alone)."""
    out: dict[str, str] = {}
    wanted = _WANTED_HEADERS
    for raw_name, raw_value in scope["headers"]:
        name = wanted.get(raw_name) or wanted.get(raw_name.lower())
        if name is None:
            continue
        if name == "authorization" and name in out:
            out[name] = "\x00multiple"
            continue
        out[name] = raw_value.decode("latin-1")
    return out


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the app the body already read, then defer to the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
