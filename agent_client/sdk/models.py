"""Typed models (pydantic) of the admin API's main answers: ``Agent.of(client.agents.get(agent_id))``.

Surface methods return the JSON answer as a ``dict`` (one definition serves the sync and the async
client); these models give it types when you want them. Unknown fields are kept (``extra="allow"``),
so a newer server never breaks an older SDK; a field the server stopped sending fails validation.
``tests/agent_client`` validates every model against the live server's answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def of(cls, data: Any) -> Self:
        """Validate an answer (a dict from a surface method) into this model."""
        return cls.model_validate(data)


class Agent(Model):
    id: str
    name: str
    team_id: str | None
    owner: str | None
    description: str
    tags: list[str]
    status: Literal["active", "suspended", "revoked"]
    created_at: int
    updated_at: int
    status_changed_at: int


class AgentPage(Model):
    items: list[Agent]
    next_cursor: str | None


class Credential(Model):
    id: str
    agent_id: str
    kind: Literal["secret", "public_key", "jwks_uri"]
    status: Literal["active", "revoked", "expired"]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    secret: str | None = None  # only in the answer that issued it


class Rotated(Model):
    new: Credential
    old: Credential


class Team(Model):
    id: str
    name: str
    description: str
    created_at: int


class BudgetStatus(Model):
    spent: int
    reserved: int
    remaining: int
    period_key: str
    period_start: datetime
    period_end: datetime | None


class Budget(Model):
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
    status: BudgetStatus | None = None


class Reservation(Model):
    reservation_id: str | None
    budgets: list[str]
    expires_at: datetime | None
    units: int = 1


class Rejection(Model):
    index: int
    field: str
    message: str
    id: str | None = None


class Ingested(Model):
    """The answer to ``metering.record`` / ``record_batch`` / ``outcomes.record``."""

    accepted: int
    duplicates: list[str]
    rejected: list[Rejection]


class Usage(Model):
    start: datetime
    end: datetime
    granularity: str
    group_by: list[str]
    rows: list[dict[str, Any]]


class Customer(Model):
    id: str
    name: str
    currency: str
    timezone: str
    members: list[dict[str, str]]


class Subscription(Model):
    id: str
    customer_id: str
    plan_version_id: str
    starts_at: int
    ends_at: int | None


class Credit(Model):
    id: str
    customer_id: str
    currency: str
    amount: str
    remaining: str | None = None
    category: str


class Invoice(Model):
    """A preview or a finalized invoice (amounts are decimal strings)."""

    customer_id: str
    currency: str
    period: dict[str, str]
    lines: list[dict[str, Any]]
    subtotal: str
    total: str


class PolicyLocation(Model):
    """A deciding policy and where it is written."""

    id: str
    file: str
    line: int
    col: int


class PolicyTestResult(Model):
    name: str  # "ALLOW/<name>" or "DENY/<name>"
    expected: Literal["ALLOW", "DENY"]
    actual: Literal["ALLOW", "DENY", "ERROR"]  # ERROR: Cedar could not evaluate the request
    passed: bool
    policies: list[PolicyLocation]
    errors: list[str]
    failure: str | None


class PolicyTestReport(Model):
    """The answer to ``policies.test``: ``ok`` when at least one test ran and none failed."""

    target: Literal["active", "draft"]
    version: int | None  # the stored version tested; None for a draft, a directory or the embedded set
    sha256: str
    passed: int
    failed: int
    ok: bool
    results: list[PolicyTestResult]


class Machine(Model):
    id: str
    license_id: str
    fingerprint: str
    heartbeat_status: Literal["NOT_REQUIRED", "NOT_STARTED", "ALIVE", "DEAD"]


class License(Model):
    id: str
    name: str
    status: Literal["active", "suspended", "revoked"]
    policy_id: str
    expires_at: str | None
    entitlements: list[str]
    max_machines: int | None
    machines_count: int
    key: str | None = None  # only in the answer that created it
    machines: list[Machine] | None = None


class Signed(Model):
    """A signed licensing answer (``validate``, ``activate``, ``me``...): ``data`` and ``meta``."""

    data: Any
    meta: dict[str, Any]
