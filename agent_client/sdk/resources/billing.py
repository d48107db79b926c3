"""Billing: customers, plans, subscriptions, credits, invoices (preview, finalized, CSV) and their webhooks.

Amounts are decimal strings in the customer's currency (``"100.00"``); instants are RFC 3339
strings with an offset (``datetime`` values are formatted for you).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg

When = str | datetime | None


def _when(value: When) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class Customers(Surface[R]):
    """``/customers``: create, list, get, add a member (agent or team); invoice preview and value receipt."""

    @operation("POST /customers")
    def create(
        self,
        id: str,
        name: str,
        currency: str,
        *,
        timezone: str | None = None,
        email: str | None = None,
        credits_low_threshold: str | None = None,
        agents: Sequence[str] | None = None,
        teams: Sequence[str] | None = None,
    ) -> R:
        """A billed customer (``id`` is yours; events name it in ``customer``), optionally with its agents/teams."""
        body = compact(
            id=id, name=name, currency=currency, timezone=timezone, email=email,
            credits_low_threshold=credits_low_threshold, agents=None if agents is None else list(agents),
            teams=None if teams is None else list(teams),
        )  # fmt: skip
        return self._request("POST", "/customers", json=body)

    @operation("GET /customers")
    def list(self) -> R:
        return self._request("GET", "/customers")

    @operation("GET /customers/{}")
    def get(self, customer_id: str) -> R:
        return self._request("GET", f"/customers/{_seg(customer_id)}")

    @operation("POST /customers/{}/members")
    def add_member(self, customer_id: str, *, agent: str | None = None, team: str | None = None) -> R:
        """Bill the future events of an agent or a team to the customer."""
        body = compact(agent_id=agent, team_id=team)
        return self._request("POST", f"/customers/{_seg(customer_id)}/members", json=body)

    @operation("GET /customers/{}/value-receipt")
    def value_receipt(self, customer_id: str, *, at: When = None) -> R:
        """A signed receipt of the outcomes delivered in the period containing ``at`` (default: now)."""
        return self._request("GET", f"/customers/{_seg(customer_id)}/value-receipt", params={"at": _when(at)})


class Plans(Surface[R]):
    """``/plans``: create (with its first version), list, get, add a version."""

    @operation("POST /plans")
    def create(self, id: str, name: str, version: Mapping[str, Any]) -> R:
        """``version`` is the first version's spec (currency, interval, components...; see docs/billing.md)."""
        return self._request("POST", "/plans", json={"id": id, "name": name, "version": dict(version)})

    @operation("GET /plans")
    def list(self) -> R:
        return self._request("GET", "/plans")

    @operation("GET /plans/{}")
    def get(self, plan_id: str) -> R:
        return self._request("GET", f"/plans/{_seg(plan_id)}")

    @operation("POST /plans/{}/versions")
    def add_version(self, plan_id: str, spec: Mapping[str, Any]) -> R:
        """A new immutable version (existing versions never change)."""
        return self._request("POST", f"/plans/{_seg(plan_id)}/versions", json=dict(spec))


class Subscriptions(Surface[R]):
    """``/subscriptions``: subscribe a customer (or change its plan at a period boundary), list."""

    @operation("POST /subscriptions")
    def create(self, customer_id: str, plan: str, *, starts_at: When = None) -> R:
        """``plan``: a version id (``hybrid@2``) or a plan id (its newest version)."""
        body = compact(customer_id=customer_id, plan=plan, starts_at=_when(starts_at))
        return self._request("POST", "/subscriptions", json=body)

    @operation("GET /subscriptions")
    def list(self, *, customer: str | None = None) -> R:
        return self._request("GET", "/subscriptions", params={"customer": customer})


class Credits(Surface[R]):
    """``/credits``: grant prepaid or promotional credit; a customer's grants and balances."""

    @operation("POST /credits")
    def grant(
        self,
        customer_id: str,
        amount: str,
        *,
        category: Literal["prepaid", "promotional"] | None = None,
        priority: int | None = None,
        effective_at: When = None,
        expires_at: When = None,
        description: str | None = None,
    ) -> R:
        body = compact(
            customer_id=customer_id, amount=amount, category=category, priority=priority,
            effective_at=_when(effective_at), expires_at=_when(expires_at), description=description,
        )  # fmt: skip
        return self._request("POST", "/credits", json=body)

    @operation("GET /credits")
    def list(self, *, customer: str | None = None) -> R:
        return self._request("GET", "/credits", params={"customer": customer})


class Invoices(Surface[R]):
    """Invoices: a side-effect-free preview, finalized invoices (JSON or CSV), closing a period."""

    @operation("GET /customers/{}/invoice-preview")
    def preview(self, customer_id: str, *, at: When = None) -> R:
        """The invoice of the period containing ``at`` (default: now), from the rollups; nothing is stored."""
        return self._request("GET", f"/customers/{_seg(customer_id)}/invoice-preview", params={"at": _when(at)})

    @operation("GET /invoices")
    def list(self, *, customer: str | None = None) -> R:
        return self._request("GET", "/invoices", params={"customer": customer})

    @operation("GET /invoices/{}")
    def get(self, invoice_id: str) -> R:
        return self._request("GET", f"/invoices/{_seg(invoice_id)}")

    @operation("GET /invoices/{}")
    def csv(self, invoice_id: str) -> R:
        """The invoice as CSV (one row per line and agent): ``{"content_type": "text/csv...", "text": ...}``."""
        return self._request("GET", f"/invoices/{_seg(invoice_id)}", params={"format": "csv"})

    @operation("POST /invoices/close")
    def close(self, customer_id: str, at: str | datetime, *, force: bool | None = None) -> R:
        """Finalize the period containing ``at`` (once: ``created`` is False when it already was)."""
        body = compact(customer_id=customer_id, at=_when(at), force=force)
        return self._request("POST", "/invoices/close", json=body)


class BillingWebhooks(Surface[R]):
    """``/billing/webhooks``: ``invoice.finalized`` and ``credits.low`` endpoints."""

    @operation("POST /billing/webhooks")
    def add(self, url: str, *, secret: str | None = None, description: str | None = None) -> R:
        """An endpoint; its ``secret`` (generated when absent) is shown once."""
        body = compact(url=url, secret=secret, description=description)
        return self._request("POST", "/billing/webhooks", json=body)

    @operation("GET /billing/webhooks")
    def list(self) -> R:
        return self._request("GET", "/billing/webhooks")

    @operation("DELETE /billing/webhooks/{}")
    def delete(self, webhook_id: str) -> R:
        return self._request("DELETE", f"/billing/webhooks/{_seg(webhook_id)}")
