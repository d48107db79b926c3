"""Policies: the active Cedar set and its history, edit one file and validate it (errors located by
file, line and column, the line marked), diff a version against the previous one, deploy (admin),
and a decision simulator: "may agent X get scope Y at server Z?" with the deciding policies.

Validation and simulation change nothing (a viewer may use them); deploy goes through
:func:`authz.policy.versions.deploy`, the function ``PUT /api/v1/policies`` uses."""

from __future__ import annotations

import difflib
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.console.web import Forbidden, Viewer, ctx_of, fail, handler, redirect, render
from authz.identity.console_roles import WRITE
from authz.policy import versions
from authz.policy.engine import DB_SETTING, PolicyVersionStore, Subject
from policies import PolicyError, Principal

MAX_TEXT = 256 * 1024
GRANT_TYPES = ("client_credentials", "token_exchange", "authorization_code", "jwt_bearer")


def _store(request: Request) -> PolicyVersionStore:
    store = ctx_of(request).store
    assert isinstance(store, PolicyVersionStore)
    return store


def _state(request: Request) -> dict[str, Any]:
    store = _store(request)
    version, schema_text, sources, entities = versions.current_parts(store)
    history = list(store.list_policy_versions())[:30]
    return {"version": version, "schema": schema_text, "sources": sources, "entities": entities, "history": history}


@handler()
async def policies_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    state = await anyio.to_thread.run_sync(_state, request)
    file = request.query_params.get("file", "")
    file = file if file in state["sources"] else next(iter(sorted(state["sources"])), "")
    return render(request, "policies.html", {
        "me": viewer, "title": "Policies", "nav": "policies", **state, "file": file,
        "text": state["sources"].get(file, ""), "problems": [], "db_mode": ctx.settings.policies == DB_SETTING,
        "setting": ctx.settings.policies, "grant_types": GRANT_TYPES, "sim": None, "validated": False,
        "done": request.query_params.get("done"),
    })  # fmt: skip


@handler()
async def edit(request: Request, viewer: Viewer) -> Response:
    """POST validate (anyone) or deploy (admin) one edited file of the active set."""
    ctx = ctx_of(request)
    form = await request.form()
    file, text = str(form.get("file", "")), str(form.get("text", ""))[:MAX_TEXT].replace("\r\n", "\n")
    comment = str(form.get("comment", ""))[:2000]
    deploying = form.get("do") == "deploy"
    if deploying and not viewer.may(WRITE):
        raise Forbidden
    state = await anyio.to_thread.run_sync(_state, request)
    if file not in state["sources"]:
        return fail(request, viewer, "Not found", "No such policy file.", 404)
    sources = {**state["sources"], file: text}
    problems: list[Any] = []
    try:
        if deploying:
            row = await anyio.to_thread.run_sync(lambda: versions.deploy(
                ctx.settings.policies, _store(request), ctx.policy, ctx.audit, author=viewer.actor,
                comment=comment, schema_text=state["schema"], sources=sources, entities=state["entities"],
            ))  # fmt: skip
            return redirect(request, f"/policies?file={file}&done=deployed+version+{row.version}")
        await anyio.to_thread.run_sync(versions.validate, state["schema"], sources, state["entities"])
    except versions.NotStored as exc:
        return fail(request, viewer, "Not deployed", str(exc), 409)
    except PolicyError as exc:
        problems = list(exc.problems)
    lines = text.split("\n")
    bad = {p.line for p in problems if p.file == file}
    return render(request, "policies.html", {
        "me": viewer, "title": "Policies", "nav": "policies", **state, "file": file, "text": text,
        "problems": problems, "numbered": [(i + 1, line, (i + 1) in bad) for i, line in enumerate(lines)],
        "db_mode": ctx.settings.policies == DB_SETTING, "setting": ctx.settings.policies,
        "grant_types": GRANT_TYPES, "sim": None, "validated": True, "comment": comment,
    }, 422 if problems else 200)  # fmt: skip


@handler()
async def simulate(request: Request, viewer: Viewer) -> Response:
    """POST: decide with the active set; shows permitted / denied scopes and the deciding policies."""
    ctx = ctx_of(request)
    form = await request.form()
    kind = str(form.get("kind", "agent"))
    kind = kind if kind in ("agent", "user", "client") else "agent"
    pid, server = str(form.get("principal", "")).strip()[:255], str(form.get("server", "")).strip()[:2048]
    scopes = [s for s in str(form.get("scopes", "")).split() if s][:20]
    grant = str(form.get("grant_type", "client_credentials"))
    grant = grant if grant in GRANT_TYPES else "client_credentials"
    team = None
    if kind == "agent":
        agent = await anyio.to_thread.run_sync(ctx.store.get_agent, pid)
        team = agent.team_id if agent is not None else None
    subject = Subject(
        Principal(kind=kind, id=pid, team=team),  # type: ignore[arg-type]
        delegated=kind == "user",
        user=pid if kind == "user" else None,
    )
    decision = ctx.policy.decide(subject, pid, server, scopes, grant) if pid and server and scopes else None
    sim = {
        "kind": kind, "principal": pid, "server": server, "scopes": " ".join(scopes), "grant_type": grant,
        "enabled": ctx.policy.enabled, "decision": decision,
        "rows": [(s, d.allowed, d.policies) for s, d in (decision.by_scope.items() if decision else [])],
    }  # fmt: skip
    state = await anyio.to_thread.run_sync(_state, request)
    file = next(iter(sorted(state["sources"])), "")
    return render(request, "policies.html", {
        "me": viewer, "title": "Policies", "nav": "policies", **state, "file": file,
        "text": state["sources"].get(file, ""), "problems": [], "db_mode": ctx.settings.policies == DB_SETTING,
        "setting": ctx.settings.policies, "grant_types": GRANT_TYPES, "sim": sim, "validated": False,
    })  # fmt: skip


@handler()
async def diff_page(request: Request, viewer: Viewer) -> Response:
    """A stored version against the one before it (unified diff per file)."""
    store = _store(request)
    raw = request.path_params["version"]
    number = int(raw) if raw.isdigit() and len(raw) < 10 else -1

    def load() -> tuple[Any, Any]:
        return store.get_policy_version(number), store.get_policy_version(number - 1) if number > 1 else None

    row, prev = await anyio.to_thread.run_sync(load)
    if row is None:
        return fail(request, viewer, "Not found", "No such version.", 404)
    if prev is not None:
        before = {**prev.sources, "schema.cedarschema": prev.schema_text}
    else:
        schema_text, sources, _ = versions.default_parts()
        before = {**sources, "schema.cedarschema": schema_text}
    after = {**row.sources, "schema.cedarschema": row.schema_text}
    files = []
    for name in sorted(set(before) | set(after)):
        lines = list(difflib.unified_diff(
            before.get(name, "").splitlines(), after.get(name, "").splitlines(),
            f"a/{name}", f"b/{name}", lineterm="", n=2,
        ))  # fmt: skip
        if lines:
            files.append((name, [(line[:1], line) for line in lines]))
    return render(request, "diff.html", {
        "me": viewer, "title": f"Policy version {row.version}", "nav": "policies", "row": row,
        "prev": prev.version if prev else "embedded set", "files": files,
    })  # fmt: skip
