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

import policies
from authz.console.web import Forbidden, Viewer, ctx_of, fail, handler, redirect, render
from authz.identity.console_roles import WRITE
from authz.policy import versions
from authz.policy.engine import DB_SETTING, PolicyEngine, PolicyVersionStore, Subject, user_subject
from policies import Decision, PolicyError, Principal

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


def _page(request: Request, viewer: Viewer, state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    ctx = ctx_of(request)
    return {
        "me": viewer, "title": "Policies", "nav": "policies", **state, "problems": [], "validated": False,
        "db_mode": ctx.settings.policies == DB_SETTING, "setting": ctx.settings.policies,
        "grant_types": GRANT_TYPES, "sim": None, **extra,
    }  # fmt: skip


def _subject(ctx: Any, kind: str, pid: str) -> Subject:
    """Who the simulator asks about, as a token request would present them to the policies: an agent
    with its team's name, its owner's username and its tags; a local user with their groups."""
    if kind == "agent":
        agent = ctx.store.get_agent(pid)
        team = ctx.store.get_team(agent.team_id) if agent is not None and agent.team_id else None
        owner = ctx.store.get_user(agent.owner) if agent is not None and agent.owner else None
        return Subject(Principal(
            kind="agent", id=pid, team=team.name if team else None, owner=owner.username if owner else None,
            tags=tuple(agent.tags or ()) if agent is not None else (),
        ))  # fmt: skip
    if kind == "user":
        user = ctx.store.get_user_by_name(pid)
        return user_subject(pid, tuple(user.groups or ()) if user is not None else ())
    return Subject(Principal(kind="client", id=pid))


def _question(form: Any) -> dict[str, Any]:
    kind = str(form.get("kind", "agent"))
    grant = str(form.get("grant_type", "client_credentials"))
    return {
        "kind": kind if kind in ("agent", "user", "client") else "agent",
        "principal": str(form.get("principal", "")).strip()[:255],
        "server": str(form.get("server", "")).strip()[:2048],
        "scopes": " ".join([s for s in str(form.get("scopes", "")).split() if s][:20]),
        "grant_type": grant if grant in GRANT_TYPES else "client_credentials",
    }


def _decide(ctx: Any, engine: PolicyEngine, q: dict[str, Any]) -> Decision | None:
    if not (q["principal"] and q["server"] and q["scopes"]):
        return None
    subject = _subject(ctx, q["kind"], q["principal"])
    return engine.decide(subject, q["principal"], q["server"], q["scopes"].split(), q["grant_type"])


def _rows(decision: Decision | None) -> list[tuple[str, bool, Any]]:
    return [(s, d.allowed, d.policies) for s, d in (decision.by_scope.items() if decision else [])]


@handler()
async def edit(request: Request, viewer: Viewer) -> Response:
    """POST validate (anyone), simulate a decision with the edited set (anyone; nothing is stored) or
    deploy it (admin), for one edited file of the active set."""
    ctx = ctx_of(request)
    form = await request.form()
    file, text = str(form.get("file", "")), str(form.get("text", ""))[:MAX_TEXT].replace("\r\n", "\n")
    comment = str(form.get("comment", ""))[:2000]
    deploying, drafting = form.get("do") == "deploy", form.get("do") == "simulate"
    if deploying and not viewer.may(WRITE):
        raise Forbidden
    state = await anyio.to_thread.run_sync(_state, request)
    if file not in state["sources"]:
        return fail(request, viewer, "Not found", "No such policy file.", 404)
    sources = {**state["sources"], file: text}
    problems: list[Any] = []
    sim = None
    try:
        if deploying:
            row = await anyio.to_thread.run_sync(lambda: versions.deploy(
                ctx.settings.policies, _store(request), ctx.policy, ctx.audit, author=viewer.actor,
                comment=comment, schema_text=state["schema"], sources=sources, entities=state["entities"],
            ))  # fmt: skip
            return redirect(request, f"/policies?file={file}&done=deployed+version+{row.version}")
        bundle = await anyio.to_thread.run_sync(policies.build, state["schema"], sources, state["entities"])
        if drafting:
            draft = PolicyEngine(bundle)
            draft.clock = ctx.policy.clock
            q = _question(form)

            def both() -> tuple[Decision | None, Decision | None]:
                return _decide(ctx, ctx.policy, q), _decide(ctx, draft, q)

            active, drafted = await anyio.to_thread.run_sync(both)
            was = active.by_scope if active else {}
            rows = [(sc, d.allowed, d.policies, was.get(sc)) for sc, d in (drafted.by_scope if drafted else {}).items()]
            sim = {**q, "enabled": True, "decision": drafted, "draft": True, "rows": rows}
    except versions.NotStored as exc:
        return fail(request, viewer, "Not deployed", str(exc), 409)
    except PolicyError as exc:
        problems = list(exc.problems)
    lines = text.split("\n")
    bad = {p.line for p in problems if p.file == file}
    return render(request, "policies.html", _page(
        request, viewer, state, file=file, text=text, problems=problems, sim=sim, validated=True,
        numbered=[(i + 1, line, (i + 1) in bad) for i, line in enumerate(lines)], comment=comment,
    ), 422 if problems else 200)  # fmt: skip


@handler()
async def simulate(request: Request, viewer: Viewer) -> Response:
    """POST: decide with the active set; shows permitted / denied scopes and the deciding policies.
    The editor's file and text come along in the same form and are shown again unchanged."""
    ctx = ctx_of(request)
    form = await request.form()
    q = _question(form)
    decision = await anyio.to_thread.run_sync(_decide, ctx, ctx.policy, q)
    sim = {**q, "enabled": ctx.policy.enabled, "decision": decision, "draft": False, "rows": _rows(decision)}
    state = await anyio.to_thread.run_sync(_state, request)
    file = str(form.get("file", ""))
    file = file if file in state["sources"] else next(iter(sorted(state["sources"])), "")
    text = (
        str(form.get("text", ""))[:MAX_TEXT].replace("\r\n", "\n") if "text" in form else state["sources"].get(file, "")
    )
    return render(request, "policies.html", _page(request, viewer, state, file=file, text=text, sim=sim))


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
