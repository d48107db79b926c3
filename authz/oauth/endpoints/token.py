"""The token endpoint (RFC 6749 §3.2): every grant, ``Cache-Control: no-store`` on every answer.

RFC 6749 §5.1: the response "MUST include the HTTP 'Cache-Control' response header field with a
value of 'no-store'"; §5.2 errors are JSON with ``error`` (and 401 + ``WWW-Authenticate`` when
client authentication via the Authorization header failed).
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from authz.oauth.endpoints.token_fast import Pending
from authz.oauth.requests import AuthzRequest
from authz.oauth.server import (
    Result,
    encode_json_result,
    error_result,
    read_body,
    read_request,
    run_core,
    server_error,
    to_response,
)

log = logging.getLogger("authz.token")


async def token(request: Request) -> Response:
    """The Starlette route (the app answers ``POST`` at this path through :func:`token_app` first)."""
    answer = await _answer(request)
    return answer if isinstance(answer, Response) else to_response(answer)


async def token_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The same endpoint as a bare ASGI app: the body read from ``receive`` directly and the JSON
    answer written as bytes (the same status, headers and body as :func:`token`), without Starlette's
    routing, middleware stack and response objects — a third of a token request's event-loop time.
    A plain, valid client_credentials request is answered by
    :class:`~authz.oauth.endpoints.token_fast.ClientCredentialsFastPath`; every other one (and every
    refusal) by the generic path below."""
    try:
        body = await read_body(receive)
        server = scope["app"].state.server
        fast = server.fast_client_credentials.answer(scope, body, dpop=True)
        if isinstance(fast, Pending):
            fast = await fast.finish(server.dpop)
        elif fast is None:
            fast = server.fast_exchange.answer(scope, body)
    except Exception:
        log.exception("token endpoint failed")
        await server_error()(scope, receive, send)
        return
    if fast is not None:
        await send({"type": "http.response.start", "status": fast[0], "headers": fast[1]})
        await send({"type": "http.response.body", "body": fast[2]})
        return
    request = Request(scope, receive)
    answer = await _answer(request, body)
    if isinstance(answer, Response):
        await answer(scope, receive, send)
    elif (encoded := encode_json_result(answer)) is not None:
        status, headers, body = encoded
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    else:
        await to_response(answer)(scope, receive, send)


async def _answer(request: Request, body: bytes | None = None) -> Result | Response:
    state = request.app.state
    try:
        areq = await read_request(request, state.ctx, body=body)
        proofs = request.headers.getlist("dpop")
        result = await _check_dpop(request, areq, proofs) if proofs else None
        if result is None:
            result = await run_core(state.server.create_token_response, areq, inline=state.server.can_run_inline(areq))
    except OAuth2Error as error:
        return error_result(error)
    except Exception:
        log.exception("token endpoint failed")
        return server_error()
    status, body_, _ = result
    if status >= 400 and isinstance(body_, dict):
        _audit_refusal(request, areq, body_)
    elif areq.dpop is not None:
        result[2].extend(state.server.dpop.response_headers())
    return result


async def _check_dpop(request: Request, areq: AuthzRequest, proofs: list[str]) -> Result | None:
    """RFC 9449 §5 (:mod:`authz.oauth.dpop`): the request's proof, before any grant logic; a refusal
    (``invalid_dpop_proof``, ``use_dpop_nonce``) is answered, and audited, like any other."""
    try:
        areq.dpop = await request.app.state.server.dpop.check(proofs)
    except OAuth2Error as error:
        return error_result(error)
    return None


def _audit_refusal(request: Request, areq: AuthzRequest, body: dict[str, object]) -> None:
    """Every refused token request is a ``token.refused`` record with its reason (the OAuth error, or
    why client authentication failed). A refusal already recorded where it was decided (a budget)
    is not recorded twice. Repeats of the same refusal within one audit flush are folded into one
    record with a count (``AuditLog.refusal``): a flood costs one record per kind, none is dropped."""
    if areq.refusal_audited:
        return
    error = str(body.get("error"))
    client_id = areq.form.get("client_id") or getattr(areq.client, "client_id", None)
    if client_id is None:
        try:
            client_id, _ = extract_basic_authorization(areq.headers)
        except ValueError:  # Basic credentials that are not base64 of UTF-8 text name no client
            client_id = None
    request.app.state.ctx.audit.refusal(
        "token.refused",
        client_id=client_id,
        resource=areq.resource or areq.form.get("resource"),
        reason=areq.auth_failure or error,
        error=error,
        grant_type=areq.form.get("grant_type"),
        scope=areq.form.get("scope"),
        policies=list(areq.policy_reasons) or None,
        ip=areq.client_ip,
    )
