"""Budgets: per agent / team / workflow, spent + reserved against the limit as bars, and webhook
deliveries. Statuses come from the budget service's ledger (SQL or Redis), one read per budget
shown; a page shows at most :data:`PAGE` budgets, so the page's query count has a fixed bound."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from authz.budgets.ledger import LedgerUnavailable
from authz.budgets.model import Status
from authz.console import queries
from authz.console.web import Viewer, ctx_of, handler, render
from authz.context import Context
from authz.storage.models.budgets import WebhookDeliveryRow, WebhookOutboxRow

PAGE = 25
BAR = 300  # SVG bar width in px


def _amount(metric: str, value: int, currency: str | None) -> str:
    if metric == "cost":
        return f"{value / 1_000_000:,.2f} {currency or ''}".strip()
    return f"{value:,} {metric}"


def budget_rows(
    ctx: Context, *, subject_type: str | None = None, subject_id: str | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """The budgets (at most ``limit``), each with its current window and bar geometry."""
    if ctx.budgets is None:
        return []
    budgets = ctx.budgets.store.list_budgets(subject_type, subject_id)[:limit]
    try:
        statuses: list[Status | None] = list(ctx.budgets.statuses(budgets))
    except LedgerUnavailable:
        statuses = [None] * len(budgets)
    rows = []
    for b, st in zip(budgets, statuses, strict=True):
        spent, reserved, unavailable = (st.spent, st.reserved, False) if st else (0, 0, True)
        scale = max(b.limit, spent + reserved, 1)
        rows.append({
            "budget": b, "spent": spent, "reserved": reserved, "unavailable": unavailable,
            "pct": round(100 * (spent + reserved) / b.limit) if b.limit else 100,
            "spent_w": round(BAR * spent / scale), "reserved_w": round(BAR * reserved / scale),
            "limit_x": round(BAR * b.limit / scale),
            "spent_text": _amount(b.metric, spent, b.currency),
            "reserved_text": _amount(b.metric, reserved, b.currency),
            "limit_text": _amount(b.metric, b.limit, b.currency),
        })  # fmt: skip
    return rows


def deliveries(ctx: Context, limit: int = 20) -> list[dict[str, Any]]:
    """The newest webhook delivery attempts (host only: a URL's path or query may carry a token)."""
    d, o = WebhookDeliveryRow, WebhookOutboxRow
    q = (
        select(d.at_ms, d.attempt, d.url, d.status_code, d.duration_ms, d.error, o.budget_id, o.threshold, o.state)
        .join(o, o.id == d.outbox_id)
        .order_by(d.id.desc())
        .limit(limit)
    )
    with queries.engine_of(ctx).connect() as conn:
        return [
            {"at": r[0] // 1000, "attempt": r[1], "host": urlsplit(r[2]).netloc, "status": r[3], "ms": r[4],
             "error": (r[5] or "")[:120], "budget_id": r[6], "threshold": r[7], "state": r[8]}
            for r in conn.execute(q).all()
        ]  # fmt: skip


@handler()
async def budgets_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    kind = request.query_params.get("subject_type", "")
    kind = kind if kind in ("agent", "team", "workflow") else ""

    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return budget_rows(ctx, subject_type=kind or None), deliveries(ctx)

    rows, sent = await anyio.to_thread.run_sync(load)
    return render(request, "budgets.html", {
        "me": viewer, "title": "Budgets", "nav": "budgets", "rows": rows, "deliveries": sent, "kind": kind,
        "bar": BAR,
    })  # fmt: skip
