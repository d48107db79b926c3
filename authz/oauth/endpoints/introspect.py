"""The introspection (RFC 7662 §2) and revocation (RFC 7009 §2) endpoints.

The rules live in :mod:`authz.oauth.rfc7662` and :mod:`authz.oauth.rfc7009`; these handlers only await the body
and run Authlib's endpoint core (introspection inline: it reads memory only).
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.requests import Request
from starlette.responses import Response

from authz.oauth.server import error_result, read_request, run_core, server_error, to_response

log = logging.getLogger("authz.introspect")


async def _endpoint(request: Request, name: str, inline: bool) -> Response:
    state = request.app.state
    try:
        areq = await read_request(request, state.ctx)
        result = await run_core(lambda r: state.server.create_endpoint_response(name, r), areq, inline=inline)
    except OAuth2Error as error:
        return to_response(error_result(error))
    except Exception:
        log.exception("%s endpoint failed", name)
        return server_error()
    return to_response(result)


async def introspect(request: Request) -> Response:
    return await _endpoint(request, "introspection", inline=True)


async def revoke(request: Request) -> Response:
    return await _endpoint(request, "revocation", inline=False)
