"""MCP servers and clients: registered resources with their scopes, clients with their grant types,
allowed resources and live grants. Never a secret digest (only whether the client has a secret)."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.console import queries
from authz.console.web import Viewer, ctx_of, handler, render


@handler()
async def servers_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    resources, clients, grants = await anyio.to_thread.run_sync(queries.servers_and_clients, ctx)
    return render(request, "servers.html", {
        "me": viewer, "title": "MCP servers and clients", "nav": "servers", "resources": resources,
        "clients": clients, "grants": grants, "admin_resource": ctx.settings.admin_resource,
        "console_resource": ctx.settings.console_resource,
    })  # fmt: skip
