"""Budgets: hard and soft ceilings per agent, team and workflow, enforced on every token use.

* :mod:`authz.budgets.model` -- the values (``Budget``, ``Reservation``, ``Exhausted``, ``Status``...);
* :mod:`authz.budgets.periods` -- exact period windows (``period_window``);
* :mod:`authz.budgets.ledger` -- the ``Ledger`` Protocol; ``sql_ledger`` and ``redis_ledger`` implement it;
* :mod:`authz.budgets.store` -- definitions and webhook endpoints in SQL;
* :mod:`authz.budgets.webhooks` -- the threshold outbox and the Standard Webhooks delivery worker;
* :mod:`authz.budgets.service` -- ``BudgetService``, what the AS and the resource-server hook call.

See docs/budgets.md.
"""

from authz.budgets.ledger import Ledger, LedgerUnavailable
from authz.budgets.model import Budget, BudgetError, Exhausted, Item, Reservation, Settled, Status, WindowSpend
from authz.budgets.periods import period_window
from authz.budgets.service import BudgetService, Usage

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetService",
    "Exhausted",
    "Item",
    "Ledger",
    "LedgerUnavailable",
    "Reservation",
    "Settled",
    "Status",
    "Usage",
    "WindowSpend",
    "period_window",
]
