"""Every surface of the admin SDK, built once over a requester (sync or async): :class:`Surfaces`."""

from __future__ import annotations

from typing import Generic

from agent_client.sdk.resources.agents import Agents, Credentials, Teams
from agent_client.sdk.resources.base import Params, R, Requester, Surface, operation, operations_of
from agent_client.sdk.resources.billing import BillingWebhooks, Credits, Customers, Invoices, Plans, Subscriptions
from agent_client.sdk.resources.budgets import Budgets
from agent_client.sdk.resources.incidents import Incidents
from agent_client.sdk.resources.licensing import LicensePolicies, Licenses, LicenseWebhooks, Machines, Products
from agent_client.sdk.resources.metering import Metering, Outcomes
from agent_client.sdk.resources.oversight import AiAct, Oversight
from agent_client.sdk.resources.policies import Policies, Subjects

__all__ = [
    "Agents",
    "AiAct",
    "BillingWebhooks",
    "Budgets",
    "Credentials",
    "Credits",
    "Customers",
    "Incidents",
    "Invoices",
    "LicensePolicies",
    "LicenseWebhooks",
    "Licenses",
    "Machines",
    "Metering",
    "Outcomes",
    "Oversight",
    "Params",
    "Plans",
    "Policies",
    "Products",
    "Requester",
    "Subjects",
    "Subscriptions",
    "Surface",
    "Surfaces",
    "Teams",
    "Webhooks",
    "operation",
    "operations_of",
]  # fmt: skip


class Webhooks(Generic[R]):
    """Webhook endpoints: ``billing`` and ``licensing`` (a budget's: ``budgets.add_webhook``)."""

    def __init__(self, request: Requester[R]) -> None:
        self.billing: BillingWebhooks[R] = BillingWebhooks(request)
        self.licensing: LicenseWebhooks[R] = LicenseWebhooks(request)


class Surfaces(Generic[R]):
    """The surfaces of a client: ``agents`` (with ``credentials``), ``teams``, ``budgets``, ``metering``,
    ``outcomes``, ``policies``, ``customers``, ``plans``, ``subscriptions``, ``credits``, ``invoices``,
    ``products``, ``license_policies``, ``licenses``, ``machines``, ``webhooks``, ``subjects``, ``oversight``,
    ``incidents``."""

    SURFACES = (
        "agents", "teams", "budgets", "metering", "outcomes", "policies", "customers", "plans", "subscriptions",
        "credits", "invoices", "products", "license_policies", "licenses", "machines", "webhooks", "subjects",
        "oversight", "incidents",
    )  # fmt: skip

    def _build(self, request: Requester[R]) -> None:
        self.agents: Agents[R] = Agents(request)
        self.teams: Teams[R] = Teams(request)
        self.budgets: Budgets[R] = Budgets(request)
        self.metering: Metering[R] = Metering(request)
        self.outcomes: Outcomes[R] = Outcomes(request)
        self.policies: Policies[R] = Policies(request)
        self.customers: Customers[R] = Customers(request)
        self.plans: Plans[R] = Plans(request)
        self.subscriptions: Subscriptions[R] = Subscriptions(request)
        self.credits: Credits[R] = Credits(request)
        self.invoices: Invoices[R] = Invoices(request)
        self.products: Products[R] = Products(request)
        self.license_policies: LicensePolicies[R] = LicensePolicies(request)
        self.licenses: Licenses[R] = Licenses(request)
        self.machines: Machines[R] = Machines(request)
        self.webhooks: Webhooks[R] = Webhooks(request)
        self.subjects: Subjects[R] = Subjects(request)
        self.oversight: Oversight[R] = Oversight(request)
        self.incidents: Incidents[R] = Incidents(request)
