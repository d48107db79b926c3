"""The introspection endpoint (RFC 7662 §2); the rules live in :mod:`authz.rfc7662`."""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.requests import Request
from starlette.responses import Response

from authz.server import error_result, read_request, run_core, server_error, to_response

log = logging.getLogger("authz.introspect")


async def introspect(request: Request) -> Response:
    state = request.app.state
    try:
        areq = await read_request(request, state.ctx)
        result = await run_core(lambda r: state.server.create_endpoint_response("introspection", r), areq, inline=True)
    except OAuth2Error as error:
        return to_response(error_result(error))
    except Exception:
        log.exception("introspection failed")
        return server_error()
    return to_response(result)


async def revoke(request: Request) -> Response:
    """The revocation endpoint (RFC 7009 §2); the rules live in :mod:`authz.rfc7009`."""
    state = request.app.state
    try:
        areq = await read_request(request, state.ctx)
        result = await run_core(lambda r: state.server.create_endpoint_response("revocation", r), areq, inline=False)
    except OAuth2Error as error:
        return to_response(error_result(error))
    except Exception:
        log.exception("revocation failed")
        return server_error()
    return to_response(result)
