"""ASGI entry points for the server's workers: ``authz.asgi:create`` builds the app from AUTHZ_* settings.

``create_behind_proxy`` is the same app behind uvicorn's ``ProxyHeadersMiddleware`` (the
``X-Forwarded-Proto``/``X-Forwarded-For`` of a connection from ``FORWARDED_ALLOW_IPS``, default
``127.0.0.1,::1`` as in uvicorn, are trusted): what uvicorn's ``proxy_headers=True`` does, for a server without it
(granian; see :mod:`authz.cli.asgi_server`).
"""

from __future__ import annotations

import os
from typing import Any, cast

from starlette.applications import Starlette
from starlette.types import ASGIApp

from authz.app import create_app
from authz.core.settings import Settings, check_safe


def create() -> Starlette:
    settings = Settings()
    check_safe(settings)
    return create_app(settings)


def create_behind_proxy() -> ASGIApp:
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app: Any = create()  # uvicorn's ASGI types are narrower than Starlette's; the protocol is the same
    return cast(
        ASGIApp, ProxyHeadersMiddleware(app, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))
    )
