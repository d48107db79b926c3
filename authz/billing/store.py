"""Billing records in SQL: customers and their agents/teams, plans and versions, subscriptions, credits.

Every write validates its whole input first (the error names the field) and then writes in one
transaction, so bad input changes nothing. Plan versions are insert-only.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authz.billing.errors import BillingError, Conflict, NotFound
from authz.billing.money import MoneyError, check_currency, decimal, exponent, to_minor
from authz.billing.periods import period_at, zone
from authz.billing.plans import PlanSpec, parse_spec
from authz.storage.models.billing import (
    BillingCredit,
    BillingCustomer,
    BillingMember,
    BillingPlan,
    BillingPlanVersion,
    BillingSubscription,
)
from authz.storage.models.core import Agent, Team

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,254}")
PLAN_RE = re.compile(r"[a-z0-9][a-z0-9_\-]{0,62}")
CATEGORIES = ("prepaid", "promotional")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class Version:
    id: str
    plan_id: str
    version: int
    spec: PlanSpec
    sha256: str
    created_at: int


def to_version(row: BillingPlanVersion) -> Version:
    return Version(row.id, row.plan_id, row.version, parse_spec(row.spec), row.sha256, row.created_at)


class BillingStore:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._versions: dict[str, Version] = {}  # plan versions never change: parsed once

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def now(self) -> int:
        return int(self.clock())

    # -- customers --------------------------------------------------------------------------
    def create_customer(
        self,
        id: str,
        name: str,
        currency: str,
        timezone: str = "UTC",
        email: str = "",
        credits_low: str | None = None,
    ) -> BillingCustomer:
        if not isinstance(id, str) or not ID_RE.fullmatch(id):
            raise BillingError("must be 1-255 of [A-Za-z0-9_.:@-], starting with a letter or digit", "id")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BillingError("must be 1-255 characters", "name")
        try:
            check_currency(currency)
            low = None if credits_low is None else to_minor(decimal(credits_low, "credits_low"), currency)
        except MoneyError as exc:
            raise BillingError(exc.message, exc.field) from None
        try:
            zone(timezone)
        except ValueError as exc:
            raise BillingError(str(exc), "timezone") from None
        now = self.now()
        row = BillingCustomer(
            id=id,
            name=name.strip(),
            currency=currency,
            timezone=timezone,
            email=email or "",
            credits_low_minor=low,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.session() as s, s.begin():
                s.add(row)
        except IntegrityError:
            raise Conflict(f"customer {id!r} exists", "id") from None
        return row

    def customer(self, customer_id: str) -> BillingCustomer:
        with self.session() as s:
            row = s.get(BillingCustomer, customer_id)
        if row is None:
            raise NotFound(f"no customer {customer_id!r}")
        return row

    def customers(self) -> list[BillingCustomer]:
        with self.session() as s:
            return list(s.scalars(select(BillingCustomer).order_by(BillingCustomer.id)))

    def customer_ids(self) -> set[str]:
        with self.session() as s:
            return set(s.scalars(select(BillingCustomer.id)))

    def member_id(self, subject_type: str, subject_id: str, field: str | None = None) -> str:
        """The id of the agent (by id) or team (by id or name) to bill; an error naming ``field``
        (default ``agent_id`` / ``team_id``) when there is none."""
        if subject_type not in ("agent", "team"):
            raise BillingError("must be agent or team", "subject_type")
        with self.session() as s:
            if subject_type == "agent":
                agent = s.get(Agent, subject_id) if subject_id else None
                if agent is None:
                    raise BillingError(f"no agent {subject_id!r}", field or "agent_id")
                return agent.id
            team = s.get(Team, subject_id) if subject_id else None
            if team is None and subject_id:
                team = s.scalars(select(Team).where(Team.name == subject_id)).first()
            if team is None:
                raise BillingError(f"no team {subject_id!r} (give its id or name)", field or "team_id")
            return team.id

    def assign(self, customer_id: str, subject_type: str, subject_id: str) -> None:
        """Attribute an agent's (or a team's agents') future events to the customer (ids already
        checked: :meth:`member_id`)."""
        self.customer(customer_id)
        if subject_type not in ("agent", "team"):
            raise BillingError("must be agent or team", "subject_type")
        with self.session() as s, s.begin():
            row = s.get(BillingMember, (subject_type, subject_id))
            if row is None:
                s.add(
                    BillingMember(
                        subject_type=subject_type, subject_id=subject_id, customer_id=customer_id, created_at=self.now()
                    )
                )
            else:
                row.customer_id = customer_id

    def members(self, customer_id: str) -> list[tuple[str, str]]:
        query = select(BillingMember.subject_type, BillingMember.subject_id).where(
            BillingMember.customer_id == customer_id
        )
        with self.session() as s:
            return sorted((t, i) for t, i in s.execute(query))

    def agent_customers(self) -> dict[str, str]:
        """agent id -> customer: the agent's own mapping, else its team's."""
        with self.session() as s:
            rows = list(
                s.execute(select(BillingMember.subject_type, BillingMember.subject_id, BillingMember.customer_id))
            )
            teams = {i: c for t, i, c in rows if t == "team"}
            out: dict[str, str] = {}
            if teams:
                query = select(Agent.id, Agent.team_id).where(Agent.team_id.in_(list(teams)))
                out.update({a: teams[t] for a, t in s.execute(query) if t is not None})
        out.update({i: c for t, i, c in rows if t == "agent"})
        return out

    # -- plans --------------------------------------------------------------------------------
    def create_plan(self, plan_id: str, name: str, spec: Any) -> Version:
        if not isinstance(plan_id, str) or not PLAN_RE.fullmatch(plan_id):
            raise BillingError("must be 1-63 of [a-z0-9_-], starting with a letter or digit", "id")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BillingError("must be 1-255 characters", "name")
        parsed = parse_spec(spec)
        try:
            with self.session() as s, s.begin():
                s.add(BillingPlan(id=plan_id, name=name.strip(), created_at=self.now()))
                s.flush()
                return self._add_version(s, plan_id, parsed, 1)
        except IntegrityError:
            raise Conflict(f"plan {plan_id!r} exists; add a version instead", "id") from None

    def add_version(self, plan_id: str, spec: Any) -> Version:
        parsed = parse_spec(spec)
        with self.session() as s, s.begin():
            if s.get(BillingPlan, plan_id) is None:
                raise NotFound(f"no plan {plan_id!r}")
            latest = s.scalar(select(func.max(BillingPlanVersion.version)).where(BillingPlanVersion.plan_id == plan_id))
            return self._add_version(s, plan_id, parsed, int(latest or 0) + 1)

    def _add_version(self, s: Session, plan_id: str, spec: PlanSpec, version: int) -> Version:
        row = BillingPlanVersion(
            id=f"{plan_id}@{version}",
            plan_id=plan_id,
            version=version,
            spec=spec.json(),
            sha256=spec.sha256(),
            created_at=self.now(),
        )
        s.add(row)
        return Version(row.id, plan_id, version, spec, row.sha256, row.created_at)

    def plans(self) -> list[tuple[BillingPlan, list[Version]]]:
        with self.session() as s:
            plans = list(s.scalars(select(BillingPlan).order_by(BillingPlan.id)))
            versions = list(s.scalars(select(BillingPlanVersion).order_by(BillingPlanVersion.version)))
        return [(p, [to_version(v) for v in versions if v.plan_id == p.id]) for p in plans]

    def version(self, version_id: str) -> Version:
        """A version by id (``plan@3``), or the newest version of a plan id."""
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        with self.session() as s:
            row = s.get(BillingPlanVersion, version_id)
            if row is None:
                row = s.scalars(
                    select(BillingPlanVersion)
                    .where(BillingPlanVersion.plan_id == version_id)
                    .order_by(BillingPlanVersion.version.desc())
                    .limit(1)
                ).first()
        if row is None:
            raise NotFound(f"no plan or plan version {version_id!r}", "plan")
        version = to_version(row)
        if row.id == version_id:
            self._versions[version_id] = version
        return version

    # -- subscriptions ----------------------------------------------------------------------------
    def subscriptions(self, customer_id: str) -> list[BillingSubscription]:
        query = select(BillingSubscription).where(BillingSubscription.customer_id == customer_id)
        with self.session() as s:
            return list(s.scalars(query.order_by(BillingSubscription.starts_at)))

    def all_subscriptions(self) -> list[BillingSubscription]:
        with self.session() as s:
            return list(s.scalars(select(BillingSubscription).order_by(BillingSubscription.id)))

    def subscribe(self, customer_id: str, plan: str, starts_at: int | None = None) -> BillingSubscription:
        """Start a subscription; a customer already subscribed changes plan at a period boundary of the
        current subscription (``starts_at`` must be one), never in the middle of a period."""
        customer = self.customer(customer_id)
        version = self.version(plan)
        if version.spec.currency != customer.currency:
            raise BillingError(f"the plan bills {version.spec.currency}; the customer pays {customer.currency}", "plan")
        now = self.now()
        start = now if starts_at is None else starts_at
        current = [x for x in self.subscriptions(customer_id) if x.ends_at is None or x.ends_at > start]
        with self.session() as s, s.begin():
            for sub in current:
                if sub.starts_at >= start:
                    raise Conflict("a subscription starts at or after that instant", "starts_at")
                spec = self.version(sub.plan_version_id).spec
                p = period_at(
                    start,
                    interval=spec.interval,
                    anchor=spec.anchor,
                    tz=customer.timezone,
                    subscription_start=sub.starts_at,
                )
                if p.start != start:
                    raise BillingError(
                        f"a plan change takes effect at a period boundary; the next one is {p.end}", "starts_at"
                    )
                row = s.get(BillingSubscription, sub.id)
                assert row is not None
                row.ends_at = start
            sub = BillingSubscription(
                id=new_id("sub"),
                customer_id=customer_id,
                plan_version_id=version.id,
                starts_at=start,
                ends_at=None,
                created_at=now,
            )
            s.add(sub)
        return sub

    def subscription_at(self, customer_id: str, at: int) -> BillingSubscription:
        for sub in self.subscriptions(customer_id):
            if sub.starts_at <= at and (sub.ends_at is None or at < sub.ends_at):
                return sub
        raise NotFound(f"customer {customer_id!r} has no subscription at that time", "at")

    # -- credits --------------------------------------------------------------------------------
    def grant(
        self,
        customer_id: str,
        amount: object,
        *,
        category: str = "prepaid",
        priority: int = 50,
        effective_at: int | None = None,
        expires_at: int | None = None,
        description: str = "",
    ) -> BillingCredit:
        customer = self.customer(customer_id)
        try:
            value = decimal(amount, "amount")
        except MoneyError as exc:
            raise BillingError(exc.message, exc.field) from None
        if value <= 0:
            raise BillingError("must be positive", "amount")
        if value != value.quantize(Decimal(1).scaleb(-exponent(customer.currency))):
            raise BillingError(f"has more decimals than {customer.currency} allows", "amount")
        if category not in CATEGORIES:
            raise BillingError("must be prepaid or promotional", "category")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
            raise BillingError("must be an integer from 0 to 100", "priority")
        now = self.now()
        start = now if effective_at is None else effective_at
        if expires_at is not None and expires_at <= start:
            raise BillingError("must be after effective_at", "expires_at")
        row = BillingCredit(
            id=new_id("cr"),
            customer_id=customer_id,
            currency=customer.currency,
            amount_minor=to_minor(value, customer.currency),
            category=category,
            priority=priority,
            effective_at=start,
            expires_at=expires_at,
            description=description[:255],
            created_at=now,
        )
        with self.session() as s, s.begin():
            s.add(row)
        return row
