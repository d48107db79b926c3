"""What the billing pages share: the billing service, its errors as console pages, dates typed into
forms (a calendar day in the customer's time zone). Audit records are the billing service's
(``actor=console:<username>``)."""

from __future__ import annotations

import functools
from datetime import date, datetime, time

from starlette.requests import Request
from starlette.responses import Response

from authz.billing.errors import BillingError, NotFound
from authz.billing.periods import zone
from authz.billing.service import BillingService
from authz.console.web import Page, Viewer, fail
from authz.context import Context


def service(ctx: Context) -> BillingService:
    if ctx.billing is None:
        raise NotFound("Billing is not configured on this server.")
    return ctx.billing


def guarded(page: Page) -> Page:
    """A billing error becomes an error page with its status (404, 409, 422 naming the field)."""

    @functools.wraps(page)
    async def run(request: Request, viewer: Viewer) -> Response:
        try:
            return await page(request, viewer)
        except BillingError as exc:
            title = {404: "Not found", 409: "Not done"}.get(exc.status, "Not valid")
            where = f" ({exc.field})" if exc.field else ""
            return fail(request, viewer, title, exc.message + where + " Nothing was changed.", exc.status)

    return run


def day_instant(text: str, tz: str, field: str, *, noon: bool = True) -> int | None:
    """``YYYY-MM-DD`` as an instant in the customer's zone (noon: inside that day; else its start)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise BillingError("must be a date, YYYY-MM-DD", field) from None
    at = datetime.combine(day, time(12 if noon else 0), tzinfo=zone(tz))
    return int(at.timestamp())
