"""Credit balances: a grant's amount minus what finalized invoices burned from it.

A grant can pay an invoice when it is in force at the period's end: ``effective_at <= end`` and
``expires_at`` (if any) ``>= end``. Burn order is :func:`authz.billing.preview.burn_order`.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from authz.billing.preview import CreditBalance

BALANCES = text(
    "SELECT c.id, c.category, c.priority, c.expires_at, c.created_at, c.amount_minor, c.effective_at,"
    " coalesce((SELECT sum(u.amount_minor) FROM billing_credit_uses u WHERE u.credit_id = c.id), 0)"
    " FROM billing_credits c WHERE c.customer_id = :customer ORDER BY c.id"
)
BALANCES_OF = text(
    "SELECT c.customer_id, c.id, c.category, c.priority, c.expires_at, c.created_at, c.amount_minor, c.effective_at,"
    " coalesce((SELECT sum(u.amount_minor) FROM billing_credit_uses u WHERE u.credit_id = c.id), 0)"
    " FROM billing_credits c WHERE c.customer_id IN :customers ORDER BY c.id"
).bindparams(bindparam("customers", expanding=True))


def balances(conn: Connection, customer_id: str, at: int | None = None) -> list[CreditBalance]:
    """Remaining balance of each grant of the customer (only those in force at ``at``, when given)."""
    out = []
    for cid, category, priority, expires_at, created_at, amount, effective_at, spent in conn.execute(
        BALANCES, {"customer": customer_id}
    ):
        if at is not None and (effective_at > at or (expires_at is not None and expires_at < at)):
            continue
        out.append(CreditBalance(cid, category, priority, expires_at, created_at, int(amount) - int(spent)))
    return out


def balances_of(conn: Connection, customer_ids: list[str]) -> dict[str, list[tuple[CreditBalance, int]]]:
    """Every grant of these customers with its remaining balance and ``effective_at`` (one query)."""
    out: dict[str, list[tuple[CreditBalance, int]]] = {}
    if not customer_ids:
        return out
    for customer, cid, category, priority, expires_at, created_at, amount, effective_at, spent in conn.execute(
        BALANCES_OF, {"customers": customer_ids}
    ):
        balance = CreditBalance(cid, category, priority, expires_at, created_at, int(amount) - int(spent))
        out.setdefault(customer, []).append((balance, int(effective_at)))
    return out
