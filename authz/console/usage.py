"""Usage and cost over time by agent, team, workflow, model, provider or customer, as SVG charts with
an "as of" watermark. Totals come from the metering rollups grouped in SQL (``authz.metering.usage``:
whole days from the daily table, whole months from the monthly one), never from summing a page."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from authz.console import queries
from authz.console.charts import legend, stacked_columns
from authz.console.web import Viewer, ctx_of, handler, render
from authz.context import Context
from authz.metering.pricing import format_usd
from authz.metering.usage import usage
from authz.storage.models.metering import MeteringEvent

DIMENSIONS = ("agent", "team", "workflow", "model", "provider", "customer", "tool")
METRICS = {"calls": "Calls (events)", "tokens": "Tokens (input + output)", "cost": "Cost (USD)"}
RANGES = {"24h": (86_400, "hour"), "7d": (7 * 86_400, "day"), "30d": (30 * 86_400, "day"), "90d": (90 * 86_400, "day")}
TOP = 5
TABLE = 25  # rows of the totals table (the grand total covers every value)


@dataclass(frozen=True)
class Query:
    by: str = "agent"
    metric: str = "calls"
    range: str = "7d"


def _value(row: dict[str, Any], metric: str) -> float:
    if metric == "tokens":
        return float(row["input_tokens"] + row["output_tokens"])
    if metric == "cost":
        return float(row["cost_pusd"]) / 1e12
    return float(row["count"])


def build(ctx: Context, q: Query, now: int | None = None) -> dict[str, Any]:
    now = now or int(time.time())
    span, granularity = RANGES[q.range]
    if granularity == "hour":  # the last 24 whole hours, this one included
        end = now // 3600 * 3600 + 3600
    else:  # whole UTC days, today included: read from the daily rollups alone (no hourly edges)
        end = now // 86_400 * 86_400 + 86_400
    start = end - span
    engine = queries.engine_of(ctx)
    rows = usage(engine, start, end, granularity, group_by=[q.by])
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(MeteringEvent.occurred_at_ms))).scalar_one()
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        t = totals.setdefault(r[q.by] or "(none)", {"calls": 0, "tokens": 0, "cost_pusd": 0, "unpriced": 0})
        t["calls"] += r["count"]
        t["tokens"] += r["input_tokens"] + r["output_tokens"]
        t["cost_pusd"] += r["cost_pusd"]
        t["unpriced"] += r["unpriced"]
    key = {"calls": "calls", "tokens": "tokens", "cost": "cost_pusd"}[q.metric]
    ranked = sorted(totals, key=lambda g: -totals[g][key])
    shown = ranked[:TOP]
    periods = sorted({r["period"] for r in rows})
    index = {p: i for i, p in enumerate(periods)}
    series: dict[str, list[float]] = {g: [0.0] * len(periods) for g in shown}
    if len(ranked) > TOP:
        series["other"] = [0.0] * len(periods)
    for r in rows:
        g = r[q.by] or "(none)"
        series[g if g in shown else "other"][index[r["period"]]] += _value(r, q.metric)
    labels = [p[5:13].replace("T", " ") if granularity == "hour" else p[5:10] for p in periods]
    fmt = "{:,.4f}" if q.metric == "cost" else "{:,.0f}"
    grand = {k: sum(t[k] for t in totals.values()) for k in ("calls", "tokens", "cost_pusd", "unpriced")}
    return {
        "chart": stacked_columns(f"{METRICS[q.metric]} by {q.by}, {q.range}", labels, series, fmt),
        "legend": legend(list(series)),
        "totals": [
            (
                g,
                f"{int(totals[g]['calls']):,}",
                f"{int(totals[g]['tokens']):,}",
                format_usd(int(totals[g]["cost_pusd"])),
                int(totals[g]["unpriced"]),
            )
            for g in ranked[:TABLE]
        ],
        "groups": len(ranked),
        "grand": grand,
        "grand_cost": format_usd(int(grand["cost_pusd"])),
        "as_of": now,
        "latest_event": int(latest) // 1000 if latest else None,
        "pending": ctx.metering.pending() if ctx.metering is not None else 0,
    }


@handler()
async def usage_page(request: Request, viewer: Viewer) -> Response:
    ctx, p = ctx_of(request), request.query_params
    q = Query(
        by=p.get("by", "agent") if p.get("by", "agent") in DIMENSIONS else "agent",
        metric=p.get("metric", "calls") if p.get("metric", "calls") in METRICS else "calls",
        range=p.get("range", "7d") if p.get("range", "7d") in RANGES else "7d",
    )
    data = await anyio.to_thread.run_sync(build, ctx, q)
    return render(request, "usage.html", {
        "me": viewer, "title": "Usage and cost", "nav": "usage", "q": q, "dimensions": DIMENSIONS,
        "metrics": METRICS, "ranges": RANGES, **data,
    })  # fmt: skip
