"""Invoices: a customer's invoice preview (lines with quantities, free units, tiers and amounts,
credits, total, ``as_of``, ``final_after``, model cost and margin), closing a period behind a
confirmation page (admin; audited with the person), finalized invoices (newest first, one invoice,
its CSV). Everything is :class:`authz.billing.BillingService`: the preview is its pure pricing over
the rollups, closing is its :meth:`~authz.billing.service.BillingService.close`; nothing is priced here."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from authz.billing.export import invoice_csv
from authz.console.billing_common import day_instant, guarded, service
from authz.console.customers import agent_names
from authz.console.web import HEADERS, Viewer, ctx_of, handler, redirect, render
from authz.context import Context
from authz.identity.console_roles import WRITE

PAGE = 50
GROUPS = 50  # per-agent groups shown under a line (the totals cover every group)


def _agents_of(doc: dict[str, Any]) -> list[str]:
    keys = {g["key"] for line in doc["lines"] for g in line["groups"][:GROUPS]}
    return sorted(keys | {a["agent"] for a in doc.get("cost", {}).get("by_agent", [])[:GROUPS]})


def _doc_context(ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
    return {"doc": doc, "names": agent_names(ctx, [k for k in _agents_of(doc) if k != "*"]), "groups": GROUPS}


def _at(ctx: Context, customer_id: str, day: str) -> tuple[Any, int | None]:
    customer = service(ctx).store.customer(customer_id)
    return customer, day_instant(day, customer.timezone, "at")


@handler()
@guarded
async def preview_page(request: Request, viewer: Viewer) -> Response:
    ctx, customer_id = ctx_of(request), request.path_params["customer_id"]
    day = request.query_params.get("at", "")[:10]

    def load() -> dict[str, Any]:
        customer, at = _at(ctx, customer_id, day)
        doc = service(ctx).preview(customer_id, at)
        return {"customer": customer, **_doc_context(ctx, doc)}

    data = await anyio.to_thread.run_sync(load)
    return render(request, "invoice.html", {
        "me": viewer, "title": f"Invoice preview · {data['customer'].name}", "nav": "billing", "sub": "customers",
        "preview": True, "day": day, "may_write": viewer.may(WRITE), **data,
    })  # fmt: skip


@handler()
@guarded
async def close_confirm(request: Request, viewer: Viewer) -> Response:
    """GET: what closing would finalize (the period's preview now) and the confirmation form."""
    ctx, customer_id = ctx_of(request), request.path_params["customer_id"]
    day = request.query_params.get("at", "")[:10] or time.strftime("%Y-%m-%d", time.gmtime())

    def load() -> dict[str, Any]:
        customer, at = _at(ctx, customer_id, day)
        return {"customer": customer, "doc": service(ctx).preview(customer_id, at)}

    data = await anyio.to_thread.run_sync(load)
    return render(request, "close.html", {
        "me": viewer, "title": f"Close a period of {data['customer'].name}", "nav": "billing", "sub": "customers",
        "day": day, "allowed": viewer.may(WRITE), "scope": WRITE, **data,
    })  # fmt: skip


@handler(WRITE)
@guarded
async def close(request: Request, viewer: Viewer) -> Response:
    """POST: finalize the period holding ``at`` (``force``: before its grace period is over)."""
    ctx, customer_id = ctx_of(request), request.path_params["customer_id"]
    form = await request.form()
    day, force = str(form.get("at", ""))[:10], form.get("force") == "1"

    def run() -> tuple[dict[str, Any], bool]:
        _customer, at = _at(ctx, customer_id, day or time.strftime("%Y-%m-%d", time.gmtime()))
        assert at is not None
        return service(ctx).close(customer_id, at, force=force, actor=viewer.actor)

    doc, created = await anyio.to_thread.run_sync(run)
    done = "finalized" if created else "was+already+finalized"
    return redirect(request, f"/billing/invoices/{doc['id']}?done=invoice+{doc['number']}+{done}")


@handler()
@guarded
async def invoice_list(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    customer = request.query_params.get("customer", "")[:255]
    docs = await anyio.to_thread.run_sync(lambda: service(ctx).recent_invoices(customer or None, PAGE))
    return render(request, "invoices.html", {
        "me": viewer, "title": "Invoices", "nav": "billing", "sub": "invoices", "invoices": docs,
        "customer": customer, "page": PAGE,
    })  # fmt: skip


@handler()
@guarded
async def invoice_page(request: Request, viewer: Viewer) -> Response:
    ctx, invoice_id = ctx_of(request), request.path_params["invoice_id"]

    def load() -> dict[str, Any]:
        doc = service(ctx).invoice(invoice_id)
        return {"customer": service(ctx).store.customer(doc["customer_id"]), **_doc_context(ctx, doc)}

    data = await anyio.to_thread.run_sync(load)
    return render(request, "invoice.html", {
        "me": viewer, "title": f"Invoice {data['doc']['number']}", "nav": "billing", "sub": "invoices",
        "preview": False, "done": request.query_params.get("done"), **data,
    })  # fmt: skip


@handler()
@guarded
async def invoice_csv_download(request: Request, viewer: Viewer) -> Response:
    """The finalized invoice as CSV (what ``GET /api/v1/invoices/{id}?format=csv`` serves)."""
    doc = await anyio.to_thread.run_sync(service(ctx_of(request)).invoice, request.path_params["invoice_id"])
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{doc["number"]}.csv"'}
    return Response(invoice_csv(doc), media_type="text/csv", headers=headers)
