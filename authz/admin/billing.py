"""``/customers``, ``/plans``, ``/subscriptions``, ``/credits``: billing records over
:class:`authz.billing.BillingService` (``ctx.billing``). Bad input is a 422 problem naming the field
and changes nothing; invoices, previews and webhooks are in :mod:`authz.admin.invoices`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from authz.admin.api import Call, Operation, QueryParam
from authz.admin.problems import ApiProblem
from authz.billing.money import from_minor, text
from authz.billing.service import BillingService
from authz.storage.models.billing import BillingCredit, BillingCustomer, BillingSubscription

READ, WRITE = "admin:read", "admin:write"
SPEC: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def billing(call: Call) -> BillingService:
    svc = call.ctx.billing
    if svc is None:
        raise ApiProblem(503, "Billing is not configured on this server.")
    return svc


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_In):
    id: str = Field(description="Your own id for the customer (events name it in `customer`).")
    name: str
    currency: str = Field(description="ISO 4217 code (USD, EUR, JPY, ...).")
    timezone: str = Field("UTC", description="IANA time zone of calendar period boundaries.")
    email: str = ""
    credits_low_threshold: str | None = Field(None, description="A `credits.low` webhook fires below this balance.")
    agents: list[str] = Field(default_factory=list, description="Agent ids whose events are billed to it.")
    teams: list[str] = Field(default_factory=list, description="Teams whose agents' events are billed to it.")


class MemberIn(_In):
    agent_id: str | None = None
    team_id: str | None = None


class CustomerOut(BaseModel):
    id: str
    name: str
    currency: str
    timezone: str
    email: str
    members: list[dict[str, str]] = Field(default_factory=list)
    created_at: int

    @classmethod
    def of(cls, c: BillingCustomer, members: list[tuple[str, str]] = ()) -> CustomerOut:  # type: ignore[assignment]
        return cls(
            id=c.id,
            name=c.name,
            currency=c.currency,
            timezone=c.timezone,
            email=c.email,
            members=[{"type": t, "id": i} for t, i in members],
            created_at=c.created_at,
        )


class CustomerList(BaseModel):
    items: list[CustomerOut]


class PlanIn(_In):
    id: str = Field(description="Plan code, e.g. `hybrid` (1-63 of [a-z0-9_-]).")
    name: str
    version: dict[str, Any] = Field(
        description="The first version's spec: currency, interval, anchor, "
        "grace_hours, components (see docs/billing.md)."
    )


class VersionOut(BaseModel):
    id: str
    plan_id: str
    version: int
    sha256: str
    spec: dict[str, Any]
    created_at: int


class PlanOut(BaseModel):
    id: str
    name: str
    versions: list[VersionOut]


class PlanList(BaseModel):
    items: list[PlanOut]


class SubscriptionIn(_In):
    customer_id: str
    plan: str = Field(description="A plan version id (`hybrid@2`) or a plan id (its newest version).")
    starts_at: datetime | None = Field(None, description="Default: now. A plan change must be a period boundary.")


class SubscriptionOut(BaseModel):
    id: str
    customer_id: str
    plan_version_id: str
    starts_at: int
    ends_at: int | None

    @classmethod
    def of(cls, s: BillingSubscription) -> SubscriptionOut:
        return cls(
            id=s.id,
            customer_id=s.customer_id,
            plan_version_id=s.plan_version_id,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
        )


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class CreditIn(_In):
    customer_id: str
    amount: str | int = Field(description='Decimal amount in the customer\'s currency (e.g. "100.00").')
    category: str = Field("prepaid", description="prepaid | promotional")
    priority: int = Field(50, description="0-100; lower burns first.")
    effective_at: datetime | None = None
    expires_at: datetime | None = None
    description: str = ""


class CreditOut(BaseModel):
    id: str
    customer_id: str
    currency: str
    amount: str
    remaining: str | None = None
    category: str
    priority: int
    effective_at: int
    expires_at: int | None

    @classmethod
    def of(cls, c: BillingCredit, remaining_minor: int | None = None) -> CreditOut:
        rem = None if remaining_minor is None else text(from_minor(remaining_minor, c.currency), c.currency)
        return cls(
            id=c.id,
            customer_id=c.customer_id,
            currency=c.currency,
            category=c.category,
            amount=text(from_minor(c.amount_minor, c.currency), c.currency),
            remaining=rem,
            priority=c.priority,
            effective_at=c.effective_at,
            expires_at=c.expires_at,
        )


class CreditList(BaseModel):
    items: list[CreditOut]


def _ts(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiProblem(422, "Times need an offset.", errors=[("starts_at", "must have a time zone offset")])
    return int(value.timestamp())


def create_customer(call: Call) -> tuple[int, CustomerOut]:
    body: CustomerIn = call.body
    svc = billing(call)
    c = svc.create_customer(
        actor=call.actor,
        agents=body.agents,
        teams=body.teams,
        id=body.id,
        name=body.name,
        currency=body.currency,
        timezone=body.timezone,
        email=body.email,
        credits_low=body.credits_low_threshold,
    )
    return 201, CustomerOut.of(c, svc.store.members(c.id))


def list_customers(call: Call) -> tuple[int, CustomerList]:
    svc = billing(call)
    return 200, CustomerList(items=[CustomerOut.of(c) for c in svc.store.customers()])


def get_customer(call: Call) -> tuple[int, CustomerOut]:
    svc = billing(call)
    c = svc.store.customer(call.path["customer_id"])
    return 200, CustomerOut.of(c, svc.store.members(c.id))


def add_member(call: Call) -> tuple[int, CustomerOut]:
    body: MemberIn = call.body
    if (body.agent_id is None) == (body.team_id is None):
        raise ApiProblem(422, "Give exactly one of agent_id, team_id.", errors=[("agent_id", "or team_id")])
    kind, subject = ("agent", body.agent_id) if body.agent_id is not None else ("team", str(body.team_id))
    billing(call).assign(call.path["customer_id"], kind, subject, actor=call.actor)
    return get_customer(call)


def _version(v: Any) -> VersionOut:
    return VersionOut(
        id=v.id, plan_id=v.plan_id, version=v.version, sha256=v.sha256, spec=v.spec.json(), created_at=v.created_at
    )


def create_plan(call: Call) -> tuple[int, PlanOut]:
    body: PlanIn = call.body
    v = billing(call).create_plan(body.id, body.name, body.version, actor=call.actor)
    return 201, PlanOut(id=body.id, name=body.name.strip(), versions=[_version(v)])


def list_plans(call: Call) -> tuple[int, PlanList]:
    plans = billing(call).store.plans()
    return 200, PlanList(items=[PlanOut(id=p.id, name=p.name, versions=[_version(v) for v in vs]) for p, vs in plans])


def get_plan(call: Call) -> tuple[int, PlanOut]:
    for p, vs in billing(call).store.plans():
        if p.id == call.path["plan_id"]:
            return 200, PlanOut(id=p.id, name=p.name, versions=[_version(v) for v in vs])
    raise ApiProblem(404, "No such plan.")


def add_version(call: Call) -> tuple[int, VersionOut]:
    v = billing(call).add_version(call.path["plan_id"], call.body, actor=call.actor)
    return 201, _version(v)


def create_subscription(call: Call) -> tuple[int, SubscriptionOut]:
    body: SubscriptionIn = call.body
    sub = billing(call).subscribe(body.customer_id, body.plan, _ts(body.starts_at), actor=call.actor)
    return 201, SubscriptionOut.of(sub)


def list_subscriptions(call: Call) -> tuple[int, SubscriptionList]:
    store = billing(call).store
    customer = call.query.get("customer")
    subs = store.subscriptions(customer) if customer else store.all_subscriptions()
    return 200, SubscriptionList(items=[SubscriptionOut.of(s) for s in subs])


def grant_credit(call: Call) -> tuple[int, CreditOut]:
    body: CreditIn = call.body
    row = billing(call).grant(
        body.customer_id,
        body.amount,
        actor=call.actor,
        category=body.category,
        priority=body.priority,
        effective_at=_ts(body.effective_at),
        expires_at=_ts(body.expires_at),
        description=body.description,
    )
    return 201, CreditOut.of(row, row.amount_minor)


def list_credits(call: Call) -> tuple[int, CreditList]:
    customer = call.query.get("customer")
    if not customer:
        raise ApiProblem(422, "`customer` is required.", errors=[("query.customer", "required")])
    svc = billing(call)
    return 200, CreditList(items=[CreditOut.of(c, rem) for c, rem in svc.credit_balances(customer)])


CUSTOMER_QUERY = (QueryParam("customer", {"type": "string"}, "Only this customer's records."),)
C = "/customers/{customer_id}"

OPERATIONS = [
    Operation("POST", "/customers", create_customer, WRITE, "Create a billed customer (and attribute agents)",
              CustomerOut, 201, CustomerIn, errors=(409,)),
    Operation("GET", "/customers", list_customers, READ, "List customers", CustomerList, errors=()),
    Operation("GET", C, get_customer, READ, "Read a customer and its agents/teams", CustomerOut),
    Operation("POST", C + "/members", add_member, WRITE, "Bill an agent's or a team's future events to the customer",
              CustomerOut, 200, MemberIn),
    Operation("POST", "/plans", create_plan, WRITE, "Create a plan with its first (immutable) version", PlanOut,
              201, PlanIn, errors=(409,)),
    Operation("GET", "/plans", list_plans, READ, "List plans and their versions", PlanList, errors=()),
    Operation("GET", "/plans/{plan_id}", get_plan, READ, "Read a plan and its versions", PlanOut),
    Operation("POST", "/plans/{plan_id}/versions", add_version, WRITE, "Add a plan version (existing ones never "
              "change)", VersionOut, 201, SPEC),
    Operation("POST", "/subscriptions", create_subscription, WRITE, "Subscribe a customer, or change its plan at a "
              "period boundary", SubscriptionOut, 201, SubscriptionIn, errors=(404, 409)),
    Operation("GET", "/subscriptions", list_subscriptions, READ, "List subscriptions", SubscriptionList,
              query=CUSTOMER_QUERY, errors=()),
    Operation("POST", "/credits", grant_credit, WRITE, "Grant prepaid or promotional credit", CreditOut, 201,
              CreditIn),
    Operation("GET", "/credits", list_credits, READ, "A customer's credit grants and balances", CreditList,
              query=CUSTOMER_QUERY, errors=(404,)),  # an unknown customer (found by the schemathesis run)
]  # fmt: skip
