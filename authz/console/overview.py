"""The overview: agents active / suspended, tokens issued and refused today, spend today against the
budgets, audit chain status. Every number is computed server-side (SQL counts over the audit
trail, sums over the metering rollups), never summed from a page of rows."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.console import queries
from authz.console.budgets import budget_rows
from authz.console.web import Viewer, ctx_of, handler, render
from authz.metering.pricing import format_usd

OVERVIEW_BUDGETS = 5


@handler()
async def overview_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)

    def load() -> tuple[queries.Overview, list[dict[str, object]]]:
        return queries.overview(ctx), budget_rows(ctx, limit=OVERVIEW_BUDGETS)

    data, budgets = await anyio.to_thread.run_sync(load)
    return render(request, "overview.html", {
        "me": viewer, "title": "Overview", "nav": "overview", "o": data, "budgets": budgets,
        "cost_today": format_usd(data.cost_today_pusd), "done": request.query_params.get("done"),
    })  # fmt: skip
