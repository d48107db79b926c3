"""The approval page: where a person approves or rejects a gated tool call (``/console/approvals/{id}``).

The URL the resource server hands the agent (MCP URL-mode elicitation) points here. It is a console
page: the console's sign-in (authorization code + PKCE at this AS), its session cookie, CSRF token
and strict Content-Security-Policy (:mod:`authz.console.web`); a plain HTML form, so it works without
JavaScript. Anyone with a console role sees the request; deciding needs ``admin:operate`` (operator
or admin). The decision goes through :func:`authz.compliance.approvals.decide` (an audit record,
``actor=console:<username>``); the page then shows the new status (303 after the POST).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from authz.compliance import approvals
from authz.console.web import HEADERS, HERE, Viewer, ctx_of, fail, handler, prefix, redirect
from authz.console.web import templates as console_templates
from authz.core.settings import CONSOLE_PATH
from authz.identity.agents.errors import AgentError
from authz.identity.console_roles import OPERATE

templates = Jinja2Templates(directory=[str(Path(__file__).parent / "templates"), str(HERE / "templates")])
templates.env.filters.update(console_templates.env.filters)


DONE = {"approved": "approved, the agent may retry the call once", "rejected": "rejected"}


def _render(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    data = {"base": prefix(request), "htmx": False, **context}
    response = templates.TemplateResponse(request, "approval.html", data, status_code=status, headers=HEADERS)
    assert isinstance(response, HTMLResponse)
    return response


def _load(request: Request) -> tuple[dict[str, Any], str | None, str] | None:
    ctx = ctx_of(request)
    try:
        a, arguments = approvals.get_approval(ctx, request.path_params["approval_id"])
    except AgentError:
        return None
    agent = ctx.store.get_agent(a["agent"])
    if arguments is not None:
        try:
            arguments = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return a, arguments, agent.name if agent is not None else a["agent"]


@handler()
async def approval_page(request: Request, viewer: Viewer) -> Response:
    loaded = await anyio.to_thread.run_sync(_load, request)
    if loaded is None:
        return fail(request, viewer, "Not found", "No such approval request.", 404)
    a, arguments, agent_name = loaded
    return _render(request, {
        "me": viewer, "title": f"Approve {a['tool']}?", "a": a, "arguments": arguments, "agent_name": agent_name,
        "allowed": viewer.may(OPERATE), "scope": OPERATE, "done": DONE.get(request.query_params.get("done", "")),
    })  # fmt: skip


@handler(OPERATE)
async def approval_decide(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    decision, reason = str(form.get("decision", "")), str(form.get("reason", "")).strip()[:255]
    if decision not in ("approve", "reject"):
        return fail(request, viewer, "Bad request", "Choose approve or reject; nothing was changed.", 400)
    approval_id = request.path_params["approval_id"]
    try:
        ctx = ctx_of(request)
        await anyio.to_thread.run_sync(
            lambda: approvals.decide(ctx, approval_id, decision == "approve", actor=viewer.actor, reason=reason or None)
        )
    except AgentError as exc:
        return fail(request, viewer, "Not decided", f"{exc}. Nothing was changed.", exc.status)
    done = "approved" if decision == "approve" else "rejected"
    return redirect(request, f"/approvals/{approval_id}?done={done}")


def approval_routes() -> list[BaseRoute]:
    """Full paths (before the console's mount in :mod:`authz.routes`)."""
    path = CONSOLE_PATH + "/approvals/{approval_id}"
    return [Route(path, approval_page, methods=["GET"]), Route(path, approval_decide, methods=["POST"])]
