"""Route tables only."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route

from authz.admin.routes import admin_routes
from authz.compliance.approval_page import approval_routes
from authz.console.routes import console_routes
from authz.core.settings import ADMIN_API_PATH as ADMIN_PATH
from authz.core.settings import CONSOLE_PATH, Settings
from authz.oauth.endpoints import authorize, introspect, jwks, metadata, register, token
from authz.signals.endpoints import signal_routes, well_known_route


def routes(settings: Settings) -> list[BaseRoute]:
    """Metadata at the path-inserted well-known URL (RFC 8414 §3.1); endpoints under the issuer's path."""
    endpoints: list[BaseRoute] = [
        Route("/jwks", jwks.jwks, methods=["GET"]),
        Route("/authorize", authorize.authorize, methods=["GET"]),
        Route("/authorize/login", authorize.login, methods=["POST"]),
        Route("/authorize/consent", authorize.consent, methods=["POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/introspect", introspect.introspect, methods=["POST"]),
        Route("/revoke", introspect.revoke, methods=["POST"]),
        Mount(ADMIN_PATH, routes=admin_routes()),
        *signal_routes(),
        *approval_routes(),  # under the console's path, before its mount
        Mount(CONSOLE_PATH, routes=console_routes()),
    ]
    if settings.dynamic_registration:
        endpoints.append(Route("/register", register.register, methods=["POST"]))
    well_known = [
        Route(metadata.metadata_path(settings), metadata.metadata, methods=["GET"]),
        well_known_route(settings),  # SSF transmitter configuration
    ]
    if settings.path_prefix:
        return [*well_known, Mount(settings.path_prefix, routes=endpoints)]
    return [*well_known, *endpoints]
