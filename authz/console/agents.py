"""Agents: list with search and filters; one agent's page (credentials, live tokens, budgets, recent
usage and decisions); suspend / reinstate / revoke and credential rotate / revoke, each behind a
confirmation page (a plain form: works without JavaScript). Actions call the agent lifecycle
(:mod:`authz.identity.agents`), the same functions ``/api/v1`` calls, with ``actor=console:<user>``."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.compliance import ai_act
from authz.console import queries
from authz.console.budgets import budget_rows
from authz.console.web import Forbidden, Viewer, ctx_of, fail, handler, redirect, render
from authz.core.crypto import b64url, b64url_decode
from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle
from authz.identity.agents.errors import AgentError
from authz.identity.agents.lifecycle import STATUSES, Agents
from authz.identity.console_roles import OPERATE, WRITE
from authz.metering.usage import usage

ACTIONS = {  # action -> (scope needed, lifecycle function, past tense)
    "suspend": (OPERATE, lifecycle.suspend_agent, "suspended"),
    "reinstate": (OPERATE, lifecycle.reinstate_agent, "reinstated"),
    "revoke": (WRITE, lifecycle.revoke_agent, "revoked"),
}
CREDENTIAL_ACTIONS = {"rotate": OPERATE, "revoke": WRITE}


@handler()
async def agent_list(request: Request, viewer: Viewer) -> Response:
    ctx, q = ctx_of(request), request.query_params
    status = q.get("status", "") if q.get("status", "") in STATUSES else ""
    after = _cursor(q.get("after", ""))

    def load() -> tuple[list[Any], dict[str, str]]:
        teams = queries.teams(ctx)
        by_name = {v: k for k, v in teams.items()}
        team_id = by_name.get(q.get("team", ""), q.get("team") or None)
        return queries.agents_page(ctx, q=q.get("q", "")[:100], status=status, team_id=team_id, after=after), teams

    rows, teams = await anyio.to_thread.run_sync(load)
    more = len(rows) > queries.PAGE
    rows = rows[: queries.PAGE]
    next_cursor = b64url(json.dumps([rows[-1].created_at, rows[-1].id]).encode()) if more and rows else ""
    return render(request, "agents.html", {
        "me": viewer, "title": "Agents", "nav": "agents", "agents": rows, "teams": teams, "statuses": STATUSES,
        "q": q.get("q", ""), "status": status, "team": q.get("team", ""), "next_cursor": next_cursor,
    })  # fmt: skip


def _cursor(text: str) -> tuple[int, str] | None:
    try:
        value = json.loads(b64url_decode(text)) if text else None
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str):
        return value[0], value[1]
    return None


def _agent_or_none(ctx: Any, agent_id: str) -> Any:
    try:
        return lifecycle.get_agent(Agents.from_context(ctx), agent_id)
    except AgentError:
        return None


@handler()
async def agent_page(request: Request, viewer: Viewer) -> Response:
    ctx, agent_id = ctx_of(request), request.path_params["agent_id"]

    def load() -> dict[str, Any] | None:
        agent = _agent_or_none(ctx, agent_id)
        if agent is None:
            return None
        now = int(time.time())
        deps = Agents.from_context(ctx)
        credentials = [(c, creds.state(c, now)) for c in creds.list_credentials(deps, agent.id)]
        budgets = budget_rows(ctx, subject_type="agent", subject_id=agent.id)
        recent = usage(queries.engine_of(ctx), now - 7 * 86400, now + 1, "day", filters={"agent": agent.id})
        decisions = queries.audit_for_client(ctx, agent.id, ("token.issued", "token.refused"))
        changes = queries.audit_for_client(
            ctx, agent.id, ("agent.created", "agent.suspended", "agent.reinstated", "agent.revoked", "agent.updated",
                            "credential.issued", "credential.revoked", "credential.rotated"), limit=10,
        )  # fmt: skip
        teams = queries.teams(ctx)
        return {
            "agent": agent, "team": teams.get(agent.team_id or "", ""), "live": queries.live_tokens(ctx, agent),
            "credentials": credentials, "budgets": budgets, "usage": recent, "decisions": decisions,
            "changes": changes, "ai_act": ai_act.get_record(ctx, agent.id),
        }  # fmt: skip

    data = await anyio.to_thread.run_sync(load)
    if data is None:
        return fail(request, viewer, "Not found", "No such agent.", 404)
    return render(request, "agent.html", {"me": viewer, "title": data["agent"].name, "nav": "agents", **data})


@handler()
async def live_count(request: Request, viewer: Viewer) -> Response:
    """The live-token count alone: an htmx partial (``HX-Request``); a plain GET gets the agent page."""
    ctx, agent_id = ctx_of(request), request.path_params["agent_id"]
    if request.headers.get("hx-request") != "true":
        return redirect(request, f"/agents/{agent_id}")
    agent = await anyio.to_thread.run_sync(_agent_or_none, ctx, agent_id)
    live = await anyio.to_thread.run_sync(queries.live_tokens, ctx, agent) if agent else 0
    return render(request, "_live.html", {"me": viewer, "agent": agent, "live": live})


@handler()
async def confirm(request: Request, viewer: Viewer) -> Response:
    """GET: the confirmation page for an agent or credential action."""
    ctx, agent_id, action = ctx_of(request), request.path_params["agent_id"], request.path_params["action"]
    credential_id = request.path_params.get("credential_id")
    scope = CREDENTIAL_ACTIONS.get(action) if credential_id else ACTIONS.get(action, ("",))[0]
    agent = await anyio.to_thread.run_sync(_agent_or_none, ctx, agent_id)
    if agent is None or not scope:
        return fail(request, viewer, "Not found", "No such action.", 404)
    cred = None
    if credential_id:
        listed = await anyio.to_thread.run_sync(creds.list_credentials, Agents.from_context(ctx), agent_id)
        cred = next((c for c in listed if c.id == credential_id), None)
        if cred is None:
            return fail(request, viewer, "Not found", "No such credential.", 404)
    return render(request, "confirm.html", {
        "me": viewer, "title": f"{action.capitalize()} {agent.name}", "nav": "agents", "agent": agent,
        "action": action, "credential": cred, "scope": scope, "allowed": viewer.may(scope),
    })  # fmt: skip


@handler(OPERATE)
async def act(request: Request, viewer: Viewer) -> Response:
    """POST: suspend / reinstate (operator) or revoke (admin) the agent."""
    ctx, agent_id, action = ctx_of(request), request.path_params["agent_id"], request.path_params["action"]
    if action not in ACTIONS:
        return fail(request, viewer, "Not found", "No such action.", 404)
    scope, fn, done = ACTIONS[action]
    if not viewer.may(scope):
        raise Forbidden
    form = await request.form()
    reason = str(form.get("reason", "")).strip()[:500] or None
    try:
        deps = Agents.from_context(ctx)
        await anyio.to_thread.run_sync(lambda: fn(deps, agent_id, actor=viewer.actor, reason=reason))
    except AgentError as exc:
        return fail(request, viewer, "Not done", str(exc), exc.status)
    return redirect(request, f"/agents/{agent_id}?done={done}")


@handler(OPERATE)
async def credential_act(request: Request, viewer: Viewer) -> Response:
    """POST: rotate (operator; key and JWKS-URL credentials, a new key pasted) or revoke (admin) a credential.
    A secret is never shown by the console, so a secret credential is rotated with the CLI."""
    ctx, p = ctx_of(request), request.path_params
    agent_id, credential_id, action = p["agent_id"], p["credential_id"], p["action"]
    scope = CREDENTIAL_ACTIONS.get(action)
    if scope is None:
        return fail(request, viewer, "Not found", "No such action.", 404)
    if not viewer.may(scope):
        raise Forbidden
    form = await request.form()
    deps = Agents.from_context(ctx)

    def run() -> None:
        if action == "revoke":
            creds.revoke_credential(deps, agent_id, credential_id, actor=viewer.actor)
            return
        old = creds.get_credential(deps, agent_id, credential_id)
        if old.kind == "secret":
            raise AgentError("A secret is shown only once and never by the console: rotate it with "
                             f"`authz agents credentials rotate {agent_id} {credential_id}`.")  # fmt: skip
        jwk: Any = None
        if old.kind == "public_key":
            try:
                jwk = json.loads(str(form.get("jwk", "")))
            except ValueError as exc:
                raise AgentError("jwk: paste the new public key as a JSON Web Key") from exc
        overlap = str(form.get("overlap", "3600"))
        creds.rotate_credential(
            deps, agent_id, credential_id, overlap=int(overlap) if overlap.isdigit() else -1, jwk=jwk,
            jwks_uri=str(form.get("jwks_uri", "")) or None, actor=viewer.actor,
        )  # fmt: skip

    try:
        await anyio.to_thread.run_sync(run)
    except AgentError as exc:
        return fail(request, viewer, "Not done", str(exc), exc.status)
    return redirect(request, f"/agents/{agent_id}?done=credential+{action}d")
