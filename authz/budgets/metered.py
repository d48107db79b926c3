"""Token and cost budgets charged by metering: ``tokens.consumed`` events settle them.

The metering flush calls :meth:`MeteredCharges.record` inside its own transaction with the spend of
the events that transaction inserted (duplicates are never inserted, so never passed here), summed
per (agent, team, workflow). ``record`` writes one ``budget_pending_usage`` row per applicable token
or cost budget **in that same transaction**: the charge commits if and only if the events do, so a
crash anywhere loses or doubles nothing. :meth:`MeteredCharges.apply` (called after the commit, and
by the periodic reconciler) charges the rows to the ledger once each (``pending:<row>``, idempotent),
as soft charges: the tokens were already consumed, so they are counted even past a hard cap, which
then refuses the next use (a spent hard budget refuses even a use estimated at 0).

Cost budgets count in the currency of the price book (USD, micro-units); events are priced in
pico-USD and each charge is rounded **up** to the micro-unit, so a budget is never undercharged.
A cost budget in another currency is not charged from metering (logged once per budget).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from authz.budgets.model import MAX_AMOUNT
from authz.budgets.service import BudgetService
from authz.storage.models.budgets import BudgetPendingUsageRow

log = logging.getLogger("authz.budgets")
PENDING = cast(Table, BudgetPendingUsageRow.__table__)
PICO_PER_MICRO = 1_000_000
PRICE_CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class MeteredSpend:
    """What newly counted ``tokens.consumed`` events of one (agent, team, workflow) add up to."""

    agent: str | None
    team: str | None
    workflow: str | None
    tokens: int = 0  # input (cache tokens included) + output
    cost_pusd: int = 0  # pico-USD, priced events only


class MeteredCharges:
    def __init__(self, service: BudgetService) -> None:
        self.service = service
        self._warned: set[str] = set()

    def record(self, conn: Connection, spends: Iterable[MeteredSpend], now_ms: int) -> int:
        """Write the budget charges of ``spends`` with ``conn`` (the flush's transaction). Returns rows."""
        amounts: dict[str, int] = {}  # one row per budget per flush (a team budget sums its agents)
        for spend in spends:
            for budget in self.service.applicable(spend.agent, spend.team, spend.workflow):
                if budget.metric == "tokens":
                    amount = spend.tokens
                elif budget.metric == "cost" and budget.currency == PRICE_CURRENCY:
                    amount = -(-spend.cost_pusd // PICO_PER_MICRO)
                else:
                    if budget.metric == "cost" and budget.id not in self._warned:
                        self._warned.add(budget.id)
                        log.warning("cost budget %s counts %s; metering prices in USD", budget.id, budget.currency)
                    continue
                if amount > 0:
                    amounts[budget.id] = min(amounts.get(budget.id, 0) + amount, MAX_AMOUNT)
        if not amounts:
            return 0
        request_id = "meter:" + secrets.token_hex(12)  # unique per flush: the transaction is the idempotency
        values = [{"request_id": request_id, "budget_id": b, "amount": a, "at_ms": now_ms} for b, a in amounts.items()]
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(insert(PENDING).values(values).on_conflict_do_nothing())
        return len(values)

    def apply(self) -> int:
        """Charge the recorded rows to the ledger (after the flush committed). Returns rows applied."""
        return self.service.charge_pending()
