"""``POST /budgets/reserve`` and ``/budgets/settle`` (scope ``budgets:use``): what a resource server calls
around each tool call — reserve an estimate (or lease a slice of units) before, settle the actual after.

Mounted by adding ``*budget_use.OPERATIONS`` to :data:`authz.admin.routes.OPERATIONS`.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from pydantic import BaseModel, Field

from authz.admin.api import Call, Operation
from authz.admin.budgets import _In, _ts, service
from authz.admin.problems import ApiProblem
from authz.budgets.model import BudgetError, Exhausted, Item, Reservation
from authz.budgets.service import Usage

# -- token use: reserve before a tool call, settle after (scope budgets:use) ----------------------------
#
# A resource server calls these with an admin-API token of its own (client_credentials, scope
# ``budgets:use``): it says who spends (the agent/team/workflow claims of the bearer token it has
# already validated) and the estimate. The reservation comes back as an opaque handle: the
# reservation (id, budget items, expiry) AES-GCM-encrypted with the keyring, so a settle needs no
# lookup, cannot be forged or pointed at other budgets, and works on every replica.

HANDLE_CONTEXT = b"authz budget reservation v1"
PROBLEM_EXHAUSTED = "urn:authz:problem:budget-exhausted"
PROBLEM_UNAVAILABLE = "urn:authz:problem:budget-unavailable"


class UsageIn(_In):
    calls: int = Field(0, ge=0, le=2**53)
    tokens: int = Field(0, ge=0, le=2**53)
    cost: int = Field(0, ge=0, le=2**53, description="Micro-units of currency.")
    currency: str | None = None

    def usage(self) -> Usage:
        return Usage(tokens=self.tokens, calls=self.calls, cost=self.cost, currency=self.currency)


class ReserveIn(_In):
    agent: str | None = Field(None, max_length=128)
    team: str | None = Field(None, max_length=128)
    workflow: str | None = Field(None, max_length=128)
    request_id: str | None = Field(
        None, max_length=128, description="Idempotency key, unique per use (scoped to the calling client)."
    )
    estimate: UsageIn = Field(default_factory=lambda: UsageIn(calls=1), description="The use (per unit).")
    units: int = Field(
        1,
        ge=1,
        le=10_000,
        description="A lease: hold up to this many uses of `estimate` at once; near the cap fewer are granted "
        "(at least one) and the answer's `units` says how many. Settle the lease once with the total actual use.",
    )
    ttl: float | None = Field(None, gt=0, le=3600, description="Seconds the hold lasts if never settled.")


class ReservedOut(BaseModel):
    reservation_id: str | None = Field(description="Opaque handle for settle; null when no budget applies.")
    budgets: list[str]
    expires_at: datetime | None
    pending: bool = False
    units: int = Field(1, description="Uses of the estimate held (a lease); 1 unless `units` asked for more.")


class SettleItem(_In):
    reservation_id: str = Field(max_length=4096)
    actual: UsageIn | None = Field(None, description="The actual use; absent: the reserved estimate is charged.")
    release: bool = Field(False, description="The use did not happen: free the hold, charge nothing.")


class SettleIn(_In):
    settlements: list[SettleItem] = Field(min_length=1, max_length=1000)


class SettledItem(BaseModel):
    reservation_id: str
    state: str


class SettledOut(BaseModel):
    results: list[SettledItem]


def seal(call: Call, reservation: Reservation) -> str:
    doc = {
        "i": reservation.id,
        "e": reservation.expires_at,
        "p": reservation.pending,
        "b": [[i.budget_id, i.period_key, i.amount] for i in reservation.items],
    }
    blob = call.ctx.keyring.encrypt(json.dumps(doc, separators=(",", ":")).encode(), HANDLE_CONTEXT)
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode()


def unseal(call: Call, handle: str) -> Reservation | None:
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
        doc = json.loads(call.ctx.keyring.decrypt(raw, HANDLE_CONTEXT))
        items = tuple(Item(str(b), str(k), int(a)) for b, k, a in doc["b"])
        return Reservation(str(doc["i"]), items, float(doc["e"]), bool(doc["p"]))
    except (ValueError, InvalidTag, KeyError, TypeError):
        return None


class BudgetProblem(ApiProblem):
    """An RFC 9457 problem with its own ``type`` and extension members (``budget_id``, ``period_end``)."""

    def __init__(
        self, status: int, detail: str, *, type_: str, extra: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, headers=headers)
        self.type_, self.extra = type_, extra

    def body(self) -> dict[str, Any]:
        title = "Budget exhausted" if self.status == 429 else "Budget ledger unavailable"
        return {**super().body(), "type": self.type_, "title": title, **self.extra}


def refusal(refused: Exhausted, now: float) -> ApiProblem:
    if refused.reason == "unavailable":
        return BudgetProblem(
            503,
            f"The budget ledger is unreachable and budget {refused.budget_id} is a hard cap.",
            type_=PROBLEM_UNAVAILABLE,
            extra={"budget_id": refused.budget_id},
        )
    seconds = refused.retry_after_seconds(now)
    until = _ts(refused.retry_after)
    detail = f"Budget {refused.budget_id} is exhausted" + (f" until {until.isoformat()}." if until else " (lifetime).")
    return BudgetProblem(
        429,
        detail,
        type_=PROBLEM_EXHAUSTED,
        extra={"budget_id": refused.budget_id, "period_end": until.isoformat() if until else None},
        headers={"Retry-After": str(seconds)} if seconds is not None else None,
    )


def reserve_use(call: Call) -> tuple[int, ReservedOut]:
    body: ReserveIn = call.body
    svc = service(call)
    budgets = svc.applicable(body.agent, body.team, body.workflow)
    if not budgets:
        return 200, ReservedOut(reservation_id=None, budgets=[], expires_at=None)
    rid = f"{call.principal.client_id}:{body.request_id or secrets.token_hex(16)}"
    try:
        got, units = svc.reserve_units(budgets, body.estimate.usage(), body.units, request_id=rid, ttl=body.ttl)
    except BudgetError as exc:
        raise ApiProblem(422, str(exc)) from exc
    if isinstance(got, Exhausted):
        raise refusal(got, svc.now())
    out = ReservedOut(
        reservation_id=seal(call, got),
        budgets=[i.budget_id for i in got.items],
        expires_at=_ts(got.expires_at),
        pending=got.pending,
        units=units,
    )
    return 200, out


def settle_use(call: Call) -> tuple[int, SettledOut]:
    body: SettleIn = call.body
    svc = service(call)
    results = []
    for item in body.settlements:
        reservation = unseal(call, item.reservation_id)
        if reservation is None:
            results.append(SettledItem(reservation_id=item.reservation_id, state="invalid"))
            continue
        try:
            if item.release:
                done = svc.release(reservation)
            else:
                done = svc.settle(reservation, item.actual.usage() if item.actual is not None else None)
        except BudgetError:
            results.append(SettledItem(reservation_id=item.reservation_id, state="invalid"))
            continue
        results.append(SettledItem(reservation_id=item.reservation_id, state=done.state))
    return 200, SettledOut(results=results)


_U = "budgets:use"

OPERATIONS = [
    Operation("POST", "/budgets/reserve", reserve_use, _U,
              "Reserve an estimate on every budget of an agent/team/workflow (429 when a hard one is exhausted)",
              ReservedOut, 200, ReserveIn, errors=(422, 429, 503)),
    Operation("POST", "/budgets/settle", settle_use, _U,
              "Settle or release reservations (idempotent, batched)", SettledOut, 200, SettleIn, errors=(422,)),
]  # fmt: skip
