"""Audit: filterable records (newest first, cursor pages), chain verification (the newest records
on every view; the whole chain on request), and export of the filtered records as JSON Lines.
Records never hold a secret or a raw token (``authz.audit.log`` drops such keys when recording)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from authz.console import queries
from authz.console.web import HEADERS, Viewer, ctx_of, handler, render

EXPORT_BATCH = 1000


def _filter(request: Request) -> queries.AuditFilter:
    p = request.query_params
    before = p.get("before", "")
    return queries.AuditFilter(
        event=p.get("event", "")[:64],
        outcome=p.get("outcome", "") if p.get("outcome", "") in ("success", "failure") else "",
        client_id=p.get("client_id", "")[:512],
        subject=p.get("subject", "")[:255],
        before=int(before) if before.isdigit() and len(before) < 18 else None,
    )


@handler()
async def audit_page(request: Request, viewer: Viewer) -> Response:
    ctx, f = ctx_of(request), _filter(request)
    full = request.query_params.get("verify") == "all"

    def load() -> tuple[list[dict[str, object]], queries.Overview | None, tuple[int, int | None] | None, Any]:
        rows = queries.audit_page(ctx, f)
        overview = None if full else queries.overview(ctx)
        return rows, overview, queries.verify_all(ctx) if full else None, queries.latest_checkpoint(ctx)

    rows, o, verified, checkpoint = await anyio.to_thread.run_sync(load)
    query = "&".join(f"{k}={v}" for k, v in request.query_params.items() if k not in ("before", "verify"))
    return render(request, "audit.html", {
        "me": viewer, "title": "Audit", "nav": "audit", "rows": rows, "f": f, "o": o, "verified": verified,
        "next_before": rows[-1]["seq"] if len(rows) == queries.PAGE else None, "query": query,
        "tail": queries.VERIFY_TAIL, "checkpoint": checkpoint,
    })  # fmt: skip


@handler()
async def audit_export(request: Request, viewer: Viewer) -> Response:
    """The filtered records as JSON Lines, newest first, hashes included (verifiable offline)."""
    ctx, f = ctx_of(request), _filter(request)

    async def lines() -> AsyncIterator[bytes]:
        cursor = f
        while True:
            rows = await anyio.to_thread.run_sync(queries.audit_page, ctx, cursor, EXPORT_BATCH)
            for row in rows:
                yield (json.dumps(row, separators=(",", ":"), sort_keys=True) + "\n").encode()
            if len(rows) < EXPORT_BATCH:
                return
            last = rows[-1]["seq"]
            cursor = queries.AuditFilter(f.event, f.outcome, f.client_id, f.subject, int(str(last)))

    ctx.audit.record("audit.exported", subject=viewer.session.user_id, actor=viewer.actor, filter=f.event or None)
    headers = {**HEADERS, "Content-Disposition": 'attachment; filename="authz-audit.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)
