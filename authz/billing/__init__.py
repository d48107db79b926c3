"""Monetization: customers, plans with immutable versions, the pricing components, invoice
previews from the metering rollups, finalized invoices, credits, webhooks and value receipts.

Public API: :class:`BillingService` (``authz.billing.service``); pure pricing in
:mod:`authz.billing.components` and :mod:`authz.billing.preview`. See ``docs/billing.md``.
"""

from __future__ import annotations

from authz.billing.errors import BillingError, Conflict, NotFound
from authz.billing.service import BillingService

__all__ = ["BillingError", "BillingService", "Conflict", "NotFound"]
