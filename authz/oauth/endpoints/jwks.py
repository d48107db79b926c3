"""The published signing keys (RFC 7517 JWK Set) at ``jwks_uri``: active, next and retired keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse


async def jwks(request: Request) -> JSONResponse:
    view = request.app.state.ctx.keys.view
    return JSONResponse(view.jwks, headers={"Cache-Control": "public, max-age=60"})
