"""Credit balances: a grant's amount minus what finalized invoices burned from it.

A grant can pay an invoice when it is in force at the period's end: ``effective_at <= end`` and
``expires_at`` (if any) ``>= end``. Burn order is :func:`authz.billing.preview.burn_order`.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from authz.billing.preview import CreditBalance
from authz.storage.models.billing import BillingCredit, BillingCreditUse


def balances(conn: Connection, customer_id: str, at: int | None = None) -> list[CreditBalance]:
    """Remaining balance of each grant of the customer (only those in force at ``at``, when given)."""
    used = (
        select(BillingCreditUse.credit_id, func.sum(BillingCreditUse.amount_minor).label("used"))
        .group_by(BillingCreditUse.credit_id)
        .subquery()
    )
    c = BillingCredit
    query = (
        select(
            c.id,
            c.category,
            c.priority,
            c.expires_at,
            c.created_at,
            c.amount_minor,
            c.effective_at,
            func.coalesce(used.c.used, 0),
        )
        .outerjoin(used, used.c.credit_id == c.id)
        .where(c.customer_id == customer_id)
        .order_by(c.id)
    )
    out = []
    for cid, category, priority, expires_at, created_at, amount, effective_at, spent in conn.execute(query):
        if at is not None and (effective_at > at or (expires_at is not None and expires_at < at)):
            continue
        out.append(CreditBalance(cid, category, priority, expires_at, created_at, int(amount) - int(spent)))
    return out
