"""Budget definitions and their webhook endpoints in SQL (the ledgers hold only counters).

Webhook secrets (Standard Webhooks ``whsec_...``) are encrypted with the keyring (AES-GCM, the
endpoint id as associated data) and returned only once, when the endpoint is created.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from authz.budgets.model import Budget, BudgetError
from authz.core.crypto import Keyring
from authz.storage.models.budgets import (
    BudgetRow,
    BudgetUsageRow,
    BudgetWebhookRow,
)

SECRET_PREFIX = "whsec_"
MAX_WEBHOOKS = 10


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    budget_id: str
    url: str
    created_at: int


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A just-created endpoint with its secret: the only time the secret leaves the server."""

    endpoint: WebhookEndpoint
    secret: str


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 2048:
        raise BudgetError("webhook url must be an absolute http(s) URL")
    return url


def _to_budget(row: BudgetRow) -> Budget:
    return Budget(
        id=row.id,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        metric=row.metric,
        limit=row.limit_amount,
        period=row.period,
        timezone=row.timezone,
        hard=row.hard,
        thresholds=tuple(sorted(row.thresholds)),
        currency=row.currency,
    )


def _secret_context(endpoint_id: str) -> bytes:
    return b"authz budget webhook v1:" + endpoint_id.encode()


class BudgetStore:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- budgets --------------------------------------------------------------------------------
    def create(
        self,
        subject_type: str,
        subject_id: str,
        *,
        metric: str,
        limit: int,
        period: str = "month",
        timezone: str = "UTC",
        hard: bool = True,
        thresholds: Sequence[int] = (),
        currency: str | None = None,
        webhooks: Sequence[tuple[str, str | None]] = (),
    ) -> tuple[Budget, list[NewWebhook]]:
        """Create a budget (and its webhook endpoints: ``(url, secret or None to generate)``)."""
        budget = Budget(
            id="bud_" + secrets.token_hex(12),
            subject_type=subject_type,
            subject_id=subject_id,
            metric=metric,
            limit=limit,
            period=period,
            timezone=timezone,
            hard=hard,
            thresholds=tuple(sorted(thresholds)),
            currency=currency,
        ).validate()
        if len(webhooks) > MAX_WEBHOOKS:
            raise BudgetError(f"at most {MAX_WEBHOOKS} webhook endpoints per budget")
        now = int(time.time())
        with self._session() as s, s.begin():
            s.add(
                BudgetRow(
                    id=budget.id,
                    subject_type=budget.subject_type,
                    subject_id=budget.subject_id,
                    metric=budget.metric,
                    currency=budget.currency,
                    period=budget.period,
                    timezone=budget.timezone,
                    limit_amount=budget.limit,
                    hard=budget.hard,
                    thresholds=list(budget.thresholds),
                    created_at=now,
                    updated_at=now,
                )
            )
            s.flush()
            created = [self._add_webhook(s, budget.id, url, secret, now) for url, secret in webhooks]
        return budget, created

    def get(self, budget_id: str) -> Budget | None:
        with self._session() as s:
            row = s.get(BudgetRow, budget_id)
            return _to_budget(row) if row else None

    def list_budgets(self, subject_type: str | None = None, subject_id: str | None = None) -> list[Budget]:
        query = select(BudgetRow).order_by(BudgetRow.created_at, BudgetRow.id)
        if subject_type is not None:
            query = query.where(BudgetRow.subject_type == subject_type)
        if subject_id is not None:
            query = query.where(BudgetRow.subject_id == subject_id)
        with self._session() as s:
            return [_to_budget(r) for r in s.scalars(query)]

    def for_subjects(self, subjects: Sequence[tuple[str, str]]) -> list[Budget]:
        """Every budget on any of ``(subject_type, subject_id)``, in id order."""
        if not subjects:
            return []
        from sqlalchemy import tuple_

        query = select(BudgetRow).where(tuple_(BudgetRow.subject_type, BudgetRow.subject_id).in_(list(subjects)))
        with self._session() as s:
            return sorted((_to_budget(r) for r in s.scalars(query)), key=lambda b: b.id)

    def update(self, budget_id: str, **changes: Any) -> Budget:
        """Change limit, period, timezone, hard, thresholds (subject, metric and currency are fixed).

        A period or time zone change starts new windows (counters are keyed by window).
        """
        allowed = {"limit", "period", "timezone", "hard", "thresholds"}
        if not set(changes) <= allowed:
            raise BudgetError(f"only {', '.join(sorted(allowed))} can change")
        with self._session() as s, s.begin():
            row = s.get(BudgetRow, budget_id, with_for_update=True)
            if row is None:
                raise KeyError(budget_id)
            if "thresholds" in changes:
                changes["thresholds"] = tuple(sorted(changes["thresholds"]))
            budget = replace(_to_budget(row), **changes).validate()
            row.limit_amount = budget.limit
            row.period = budget.period
            row.timezone = budget.timezone
            row.hard = budget.hard
            row.thresholds = list(budget.thresholds)
            row.updated_at = int(time.time())
        return budget

    def delete(self, budget_id: str) -> bool:
        with self._session() as s, s.begin():
            row = s.get(BudgetRow, budget_id)
            if row is None:
                return False
            s.execute(delete(BudgetWebhookRow).where(BudgetWebhookRow.budget_id == budget_id))
            s.execute(delete(BudgetUsageRow).where(BudgetUsageRow.budget_id == budget_id))
            s.delete(row)
        return True

    # -- webhook endpoints ----------------------------------------------------------------------
    def _add_webhook(self, s: Session, budget_id: str, url: str, secret: str | None, now: int) -> NewWebhook:
        endpoint_id = "whe_" + secrets.token_hex(12)
        secret = secret or new_webhook_secret()
        if not secret.startswith(SECRET_PREFIX):
            raise BudgetError("webhook secrets are Standard Webhooks secrets: whsec_<base64>")
        try:
            raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except ValueError as exc:
            raise BudgetError("webhook secret is not valid base64") from exc
        if not 24 <= len(raw) <= 64:
            raise BudgetError("webhook secrets hold 24 to 64 random bytes")
        row = BudgetWebhookRow(
            id=endpoint_id,
            budget_id=budget_id,
            url=_check_url(url),
            secret_enc=self.keyring.encrypt(secret.encode(), _secret_context(endpoint_id)),
            created_at=now,
        )
        s.add(row)
        return NewWebhook(WebhookEndpoint(endpoint_id, budget_id, row.url, now), secret)

    def add_webhook(self, budget_id: str, url: str, secret: str | None = None) -> NewWebhook:
        with self._session() as s, s.begin():
            if s.get(BudgetRow, budget_id) is None:
                raise KeyError(budget_id)
            count = len(s.scalars(select(BudgetWebhookRow.id).where(BudgetWebhookRow.budget_id == budget_id)).all())
            if count >= MAX_WEBHOOKS:
                raise BudgetError(f"at most {MAX_WEBHOOKS} webhook endpoints per budget")
            return self._add_webhook(s, budget_id, url, secret, int(time.time()))

    def webhooks(self, budget_id: str) -> list[WebhookEndpoint]:
        query = select(BudgetWebhookRow).where(BudgetWebhookRow.budget_id == budget_id).order_by(BudgetWebhookRow.id)
        with self._session() as s:
            return [WebhookEndpoint(r.id, r.budget_id, r.url, r.created_at) for r in s.scalars(query)]

    def remove_webhook(self, endpoint_id: str) -> bool:
        with self._session() as s, s.begin():
            row = s.get(BudgetWebhookRow, endpoint_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def webhook_target(self, endpoint_id: str) -> tuple[str, str] | None:
        """``(url, secret)`` for the delivery worker; None once the endpoint is gone."""
        with self._session() as s:
            row = s.get(BudgetWebhookRow, endpoint_id)
            if row is None:
                return None
            return row.url, self.keyring.decrypt(row.secret_enc, _secret_context(endpoint_id)).decode()
