"""``/agents/{id}/budgets``, ``/teams/{id}/budgets``, ``/workflows/{id}/budgets`` and ``/budgets/{id}``:
create, list, read with status (spent, reserved, remaining, period end), update, delete, webhooks.

Mounted by adding ``*budgets.OPERATIONS`` to :data:`authz.admin.routes.OPERATIONS`. The service is
``ctx.budgets`` once the lead wires one into the context; until then a SQL-ledger service on the
context's engine is used (same tables, so the numbers agree with the SQL ledger).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authz.admin.api import Call, Operation
from authz.admin.problems import ApiProblem
from authz.budgets.model import Budget, BudgetError
from authz.budgets.service import BudgetService
from authz.budgets.sql_ledger import SqlLedger
from authz.budgets.store import BudgetStore
from authz.identity.agents import lifecycle

_FALLBACK: dict[int, BudgetService] = {}


def service(call: Call) -> BudgetService:
    wired: BudgetService | None = getattr(call.ctx, "budgets", None)
    if wired is not None:
        return wired
    key = id(call.ctx)
    if key not in _FALLBACK:
        engine = call.ctx.store.engine  # type: ignore[attr-defined]
        _FALLBACK[key] = BudgetService(BudgetStore(engine, call.ctx.keyring), SqlLedger(engine))
    return _FALLBACK[key]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookIn(_In):
    url: str = Field(description="Absolute http(s) URL that receives signed threshold events.")
    secret: str | None = Field(None, description="A Standard Webhooks secret (whsec_...); generated when absent.")


class BudgetCreate(_In):
    """Exactly one of ``token_limit``, ``call_limit``, ``cost_limit_micros`` (the latter with ``currency``)."""

    token_limit: int | None = Field(None, ge=0)
    call_limit: int | None = Field(None, ge=0)
    cost_limit_micros: int | None = Field(None, ge=0, description="Micro-units of the currency (1 USD = 1000000).")
    currency: str | None = Field(None, description="ISO 4217 code, for cost_limit_micros.")
    period: Literal["day", "week", "month", "lifetime"] = "month"
    timezone: str = Field("UTC", description="IANA time zone of the day/week/month boundaries (weeks start Monday).")
    hard_cap: bool = Field(True, description="Hard: refuse past the limit. Soft: count and alert only.")
    thresholds: list[int] = Field(default_factory=lambda: [50, 80, 100], description="Alert percentages.")
    webhooks: list[WebhookIn] = Field(default_factory=list)


class BudgetUpdate(_In):
    limit: int | None = Field(None, ge=0)
    period: Literal["day", "week", "month", "lifetime"] | None = None
    timezone: str | None = None
    hard_cap: bool | None = None
    thresholds: list[int] | None = None


class StatusOut(BaseModel):
    spent: int
    reserved: int
    remaining: int
    period_key: str
    period_start: datetime
    period_end: datetime | None


class WebhookOut(BaseModel):
    id: str
    url: str


class CreatedWebhook(WebhookOut):
    secret: str = Field(description="Shown once: store it to verify signatures.")


class BudgetOut(BaseModel):
    id: str
    subject_type: str
    subject_id: str
    metric: str
    limit: int
    currency: str | None
    period: str
    timezone: str
    hard_cap: bool
    thresholds: list[int]
    webhooks: list[WebhookOut] = Field(default_factory=list)
    status: StatusOut | None = None


class BudgetCreated(BudgetOut):
    created_webhooks: list[CreatedWebhook] = Field(default_factory=list)


class BudgetList(BaseModel):
    items: list[BudgetOut]


class Deleted(BaseModel):
    id: str
    deleted: bool


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _out(svc: BudgetService, b: Budget, with_status: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": b.id,
        "subject_type": b.subject_type,
        "subject_id": b.subject_id,
        "metric": b.metric,
        "limit": b.limit,
        "currency": b.currency,
        "period": b.period,
        "timezone": b.timezone,
        "hard_cap": b.hard,
        "thresholds": list(b.thresholds),
        "webhooks": [WebhookOut(id=w.id, url=w.url) for w in svc.store.webhooks(b.id)],
    }
    if with_status:
        s = svc.status(b)
        out["status"] = StatusOut(
            spent=s.spent,
            reserved=s.reserved,
            remaining=s.remaining,
            period_key=s.period_key,
            period_start=datetime.fromtimestamp(s.period_start, UTC),
            period_end=_ts(s.period_end),
        )
    return out


def _subject(call: Call, kind: str) -> str:
    if kind == "agent":
        return lifecycle.get_agent(call.agents, call.path["agent_id"]).id
    if kind == "team":
        return lifecycle.get_team(call.agents, call.path["team_id"]).id
    return call.path["workflow_id"]


def _budget(svc: BudgetService, budget_id: str) -> Budget:
    b = svc.store.get(budget_id)
    if b is None:
        raise ApiProblem(404, "No such budget.")
    return b


def _create(call: Call, kind: str) -> tuple[int, BudgetCreated]:
    body: BudgetCreate = call.body
    limits = {"tokens": body.token_limit, "calls": body.call_limit, "cost": body.cost_limit_micros}
    given = {metric: value for metric, value in limits.items() if value is not None}
    if len(given) != 1:
        raise ApiProblem(422, "Give exactly one of token_limit, call_limit, cost_limit_micros.")
    ((metric, limit),) = given.items()
    svc = service(call)
    try:
        budget, hooks = svc.store.create(
            kind,
            _subject(call, kind),
            metric=metric,
            limit=limit,
            period=body.period,
            timezone=body.timezone,
            hard=body.hard_cap,
            thresholds=body.thresholds,
            currency=body.currency,
            webhooks=[(w.url, w.secret) for w in body.webhooks],
        )
    except BudgetError as exc:
        raise ApiProblem(422, str(exc)) from exc
    svc.invalidate()
    call.ctx.audit.operator_change("budget", "created", actor=call.actor, target=budget.id, subject_type=kind)
    created = [CreatedWebhook(id=h.endpoint.id, url=h.endpoint.url, secret=h.secret) for h in hooks]
    return 201, BudgetCreated(**_out(svc, budget), created_webhooks=created)


def _list(call: Call, kind: str) -> tuple[int, BudgetList]:
    svc = service(call)
    budgets = svc.store.list_budgets(kind, _subject(call, kind))
    return 200, BudgetList(items=[BudgetOut(**_out(svc, b)) for b in budgets])


def create_agent_budget(call: Call) -> tuple[int, BudgetCreated]:
    return _create(call, "agent")


def create_team_budget(call: Call) -> tuple[int, BudgetCreated]:
    return _create(call, "team")


def create_workflow_budget(call: Call) -> tuple[int, BudgetCreated]:
    return _create(call, "workflow")


def list_agent_budgets(call: Call) -> tuple[int, BudgetList]:
    return _list(call, "agent")


def list_team_budgets(call: Call) -> tuple[int, BudgetList]:
    return _list(call, "team")


def list_workflow_budgets(call: Call) -> tuple[int, BudgetList]:
    return _list(call, "workflow")


def get_budget(call: Call) -> tuple[int, BudgetOut]:
    svc = service(call)
    return 200, BudgetOut(**_out(svc, _budget(svc, call.path["budget_id"])))


def update_budget(call: Call) -> tuple[int, BudgetOut]:
    body: BudgetUpdate = call.body
    svc = service(call)
    _budget(svc, call.path["budget_id"])
    changes = body.model_dump(exclude_none=True)
    if "hard_cap" in changes:
        changes["hard"] = changes.pop("hard_cap")
    try:
        budget = svc.store.update(call.path["budget_id"], **changes)
    except BudgetError as exc:
        raise ApiProblem(422, str(exc)) from exc
    svc.invalidate()
    call.ctx.audit.operator_change("budget", "updated", actor=call.actor, target=budget.id, fields=sorted(changes))
    return 200, BudgetOut(**_out(svc, budget))


def delete_budget(call: Call) -> tuple[int, Deleted]:
    svc = service(call)
    if not svc.store.delete(call.path["budget_id"]):
        raise ApiProblem(404, "No such budget.")
    svc.invalidate()
    call.ctx.audit.operator_change("budget", "deleted", actor=call.actor, target=call.path["budget_id"])
    return 200, Deleted(id=call.path["budget_id"], deleted=True)


def budget_status(call: Call) -> tuple[int, StatusOut]:
    svc = service(call)
    status = _out(svc, _budget(svc, call.path["budget_id"]))["status"]
    assert isinstance(status, StatusOut)
    return 200, status


def add_budget_webhook(call: Call) -> tuple[int, CreatedWebhook]:
    body: WebhookIn = call.body
    svc = service(call)
    try:
        made = svc.store.add_webhook(call.path["budget_id"], body.url, body.secret)
    except KeyError as exc:
        raise ApiProblem(404, "No such budget.") from exc
    except BudgetError as exc:
        raise ApiProblem(422, str(exc)) from exc
    return 201, CreatedWebhook(id=made.endpoint.id, url=made.endpoint.url, secret=made.secret)


_W, _R = "admin:write", "admin:read"

OPERATIONS = [
    Operation("POST", "/agents/{agent_id}/budgets", create_agent_budget, _W, "Create a budget on an agent",
              BudgetCreated, 201, BudgetCreate, errors=(404, 422)),
    Operation("GET", "/agents/{agent_id}/budgets", list_agent_budgets, _R, "List an agent's budgets", BudgetList),
    Operation("POST", "/teams/{team_id}/budgets", create_team_budget, _W, "Create a budget on a team",
              BudgetCreated, 201, BudgetCreate, errors=(404, 422)),
    Operation("GET", "/teams/{team_id}/budgets", list_team_budgets, _R, "List a team's budgets", BudgetList),
    Operation("POST", "/workflows/{workflow_id}/budgets", create_workflow_budget, _W, "Create a budget on a workflow",
              BudgetCreated, 201, BudgetCreate, errors=(422,)),
    Operation("GET", "/workflows/{workflow_id}/budgets", list_workflow_budgets, _R, "List a workflow's budgets",
              BudgetList, errors=()),
    Operation("GET", "/budgets/{budget_id}", get_budget, _R, "Read a budget and its status", BudgetOut),
    Operation("PATCH", "/budgets/{budget_id}", update_budget, _W, "Update a budget", BudgetOut, 200, BudgetUpdate,
              errors=(404, 422)),
    Operation("DELETE", "/budgets/{budget_id}", delete_budget, _W, "Delete a budget", Deleted),
    Operation("GET", "/budgets/{budget_id}/status", budget_status, _R,
              "Spent, reserved, remaining and period end of a budget", StatusOut),
    Operation("POST", "/budgets/{budget_id}/webhooks", add_budget_webhook, _W,
              "Add a webhook endpoint (secret shown once)", CreatedWebhook, 201, WebhookIn, errors=(404, 422)),
]  # fmt: skip
