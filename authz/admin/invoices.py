"""``GET /customers/{id}/invoice-preview``, ``/invoices`` (list, read as JSON or CSV, close) and
``/billing/webhooks`` over :class:`authz.billing.BillingService`.

The preview is deterministic for the same rollups: its ``ETag`` is a digest of the document and
``If-None-Match`` with that tag answers 304. ``GET /invoices/{id}`` serves CSV for ``?format=csv``
or ``Accept: text/csv``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from authz.admin.api import Call, Operation, QueryParam, RawResponse
from authz.admin.billing import READ, WRITE, billing
from authz.admin.problems import ApiProblem
from authz.billing.export import invoice_csv
from authz.billing.periods import parse_instant
from authz.billing.plans import canonical


class InvoiceDoc(BaseModel):
    """An invoice or a preview: lines (quantities, free units, tiers, amounts, cost, margin), subtotal,
    credits applied, total, `as_of`, `final_after`, `etag`; invoices add `id`, `number`, `status`."""

    model_config = ConfigDict(extra="allow")
    customer_id: str
    currency: str
    period: dict[str, str]
    lines: list[dict[str, Any]]
    subtotal: str
    total: str


class InvoiceList(BaseModel):
    items: list[dict[str, Any]] = Field(description="Invoice summaries: id, number, customer, period, total.")


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str
    at: datetime = Field(description="Any instant inside the period to close.")
    force: bool = Field(
        False, description="Close before the grace period is over (late events then go to the next invoice)."
    )


class Closed(BaseModel):
    created: bool = Field(description="False when the period was already finalized (the same invoice is returned).")
    invoice: dict[str, Any]


class BillingWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    secret: str | None = Field(None, description="whsec_...; generated when absent (shown once).")
    description: str = ""


class BillingWebhookOut(BaseModel):
    id: str
    url: str
    created_at: int
    secret: str | None = None


class BillingWebhookList(BaseModel):
    items: list[BillingWebhookOut]


class BillingWebhookDeleted(BaseModel):
    id: str
    deleted: bool


def _at(call: Call) -> int | None:
    raw = call.query.get("at")
    if not raw:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise ApiProblem(422, "`at` is not an RFC 3339 date-time.", errors=[("query.at", "invalid")]) from None


def invoice_preview(call: Call) -> tuple[int, BaseModel]:
    doc, body = billing(call).preview_json(call.path["customer_id"], _at(call))  # the document encoded once
    tag = doc["etag"]
    if call.headers.get("if-none-match") == tag:
        return 304, RawResponse(content="", headers={"ETag": tag})
    return 200, RawResponse(content=body, headers={"ETag": tag})


class ReceiptOut(BaseModel):
    receipt: str = Field(
        description="Compact JWS (typ value-receipt+jwt) signed with this server's key; verify offline with `jwks_uri`."
    )
    claims: dict[str, Any]
    jwks_uri: str


def value_receipt(call: Call) -> tuple[int, ReceiptOut]:
    ctx = call.ctx
    token, claims = billing(call).value_receipt(
        call.path["customer_id"], _at(call), ctx.keys.view.signer, ctx.settings.issuer, actor=call.actor
    )
    return 200, ReceiptOut(receipt=token, claims=claims, jwks_uri=ctx.settings.endpoint("/jwks"))


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "number", "customer_id", "period", "currency", "subtotal", "credits_minor", "total", "status")
    return {k: doc.get(k) for k in keys} | {"plan_version_id": doc["plan_version_id"]}


def list_invoices(call: Call) -> tuple[int, InvoiceList]:
    docs = billing(call).invoices(call.query.get("customer") or None)
    return 200, InvoiceList(items=[_summary(d) for d in docs])


def get_invoice(call: Call) -> tuple[int, BaseModel]:
    doc = billing(call).invoice(call.path["invoice_id"])
    wants_csv = call.query.get("format") == "csv" or "text/csv" in call.headers.get("accept", "")
    if wants_csv:
        disposition = f'attachment; filename="{doc["number"]}.csv"'
        return 200, RawResponse(
            content=invoice_csv(doc), media_type="text/csv", headers={"Content-Disposition": disposition}
        )
    return 200, RawResponse(content=canonical(doc), headers={"ETag": doc["etag"]})


def close_period(call: Call) -> tuple[int, Closed]:
    body: CloseIn = call.body
    if body.at.tzinfo is None:
        raise ApiProblem(422, "`at` needs an offset.", errors=[("at", "must have a time zone offset")])
    doc, created = billing(call).close(body.customer_id, int(body.at.timestamp()), force=body.force, actor=call.actor)
    return (201 if created else 200), Closed(created=created, invoice=doc)


def add_billing_webhook(call: Call) -> tuple[int, BillingWebhookOut]:
    body: BillingWebhookIn = call.body
    ep = billing(call).add_webhook(body.url, body.secret, body.description, actor=call.actor)
    return 201, BillingWebhookOut(id=ep.id, url=ep.url, created_at=ep.created_at, secret=ep.secret)


def list_billing_webhooks(call: Call) -> tuple[int, BillingWebhookList]:
    eps = billing(call).webhooks.list()
    return 200, BillingWebhookList(items=[BillingWebhookOut(id=e.id, url=e.url, created_at=e.created_at) for e in eps])


def remove_billing_webhook(call: Call) -> tuple[int, BillingWebhookDeleted]:
    if not billing(call).remove_webhook(call.path["webhook_id"], actor=call.actor):
        raise ApiProblem(404, "No such webhook endpoint.")
    return 200, BillingWebhookDeleted(id=call.path["webhook_id"], deleted=True)


AT_QUERY = (QueryParam("at", {"type": "string", "format": "date-time"}, "An instant in the period (default: now)."),)
LIST_QUERY = (QueryParam("customer", {"type": "string"}, "Only this customer's invoices."),)
FORMAT_QUERY = (QueryParam("format", {"type": "string", "enum": ["json", "csv"]}, "csv: one row per line/agent."),)

OPERATIONS = [
    Operation("GET", "/customers/{customer_id}/invoice-preview", invoice_preview, READ,
              "Invoice preview of a period from the rollups (no side effects; ETag)", InvoiceDoc, query=AT_QUERY,
              errors=(404,)),
    Operation("GET", "/customers/{customer_id}/value-receipt", value_receipt, READ,
              "A signed value receipt: outcomes delivered in a period and their value (verifiable offline)",
              ReceiptOut, query=AT_QUERY, errors=(404,)),
    Operation("GET", "/invoices", list_invoices, READ, "List finalized invoices", InvoiceList, query=LIST_QUERY,
              errors=()),
    Operation("GET", "/invoices/{invoice_id}", get_invoice, READ, "Read a finalized invoice (JSON or CSV)",
              InvoiceDoc, query=FORMAT_QUERY),
    Operation("POST", "/invoices/close", close_period, WRITE, "Finalize a period's invoice (once; idempotent)",
              Closed, 201, CloseIn, errors=(404, 409)),
    Operation("POST", "/billing/webhooks", add_billing_webhook, WRITE,
              "Add an invoice.finalized / credits.low endpoint", BillingWebhookOut, 201, BillingWebhookIn, errors=()),
    Operation("GET", "/billing/webhooks", list_billing_webhooks, READ, "List billing webhook endpoints",
              BillingWebhookList, errors=()),
    Operation("DELETE", "/billing/webhooks/{webhook_id}", remove_billing_webhook, WRITE,
              "Remove a billing webhook endpoint", BillingWebhookDeleted),
]  # fmt: skip
