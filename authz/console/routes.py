"""The console's route table (mounted at ``/console`` under the issuer's path by :mod:`authz.routes`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from authz.console import (
    agents,
    audit,
    budgets,
    customers,
    invoices,
    licenses,
    overview,
    plans,
    policies,
    servers,
    signin,
    usage,
)
from authz.console.web import HERE

A = "/agents/{agent_id}"
C = "/billing/customers/{customer_id}"


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", overview.overview_page, methods=["GET"]),
        Route("/login", signin.login, methods=["GET"]),
        Route("/callback", signin.callback, methods=["GET"]),
        Route("/logout", signin.logout, methods=["POST"]),
        Route("/agents", agents.agent_list, methods=["GET"]),
        Route(A, agents.agent_page, methods=["GET"]),
        Route(A + "/live", agents.live_count, methods=["GET"]),
        Route(A + "/{action}", agents.confirm, methods=["GET"]),
        Route(A + "/{action}", agents.act, methods=["POST"]),
        Route(A + "/credentials/{credential_id}/{action}", agents.confirm, methods=["GET"]),
        Route(A + "/credentials/{credential_id}/{action}", agents.credential_act, methods=["POST"]),
        Route("/servers", servers.servers_page, methods=["GET"]),
        Route("/policies", policies.policies_page, methods=["GET"]),
        Route("/policies/edit", policies.edit, methods=["POST"]),
        Route("/policies/simulate", policies.simulate, methods=["POST"]),
        Route("/policies/versions/{version}", policies.diff_page, methods=["GET"]),
        Route("/budgets", budgets.budgets_page, methods=["GET"]),
        Route("/usage", usage.usage_page, methods=["GET"]),
        Route("/audit", audit.audit_page, methods=["GET"]),
        Route("/licenses", licenses.licenses_page, methods=["GET"]),
        Route("/billing", customers.customer_list, methods=["GET"]),
        Route("/billing/customers", customers.create, methods=["POST"]),
        Route(C, customers.customer_page, methods=["GET"]),
        Route(C + "/members", customers.add_member, methods=["POST"]),
        Route(C + "/subscriptions", customers.subscribe, methods=["POST"]),
        Route(C + "/credits", customers.grant, methods=["POST"]),
        Route(C + "/preview", invoices.preview_page, methods=["GET"]),
        Route(C + "/close", invoices.close_confirm, methods=["GET"]),
        Route(C + "/close", invoices.close, methods=["POST"]),
        Route("/billing/plans", plans.plans_page, methods=["GET"]),
        Route("/billing/plans/{version_id}", plans.version_page, methods=["GET"]),
        Route("/billing/invoices", invoices.invoice_list, methods=["GET"]),
        Route("/billing/invoices/{invoice_id}", invoices.invoice_page, methods=["GET"]),
        Route("/billing/invoices/{invoice_id}/csv", invoices.invoice_csv_download, methods=["GET"]),
        Route("/audit/export", audit.audit_export, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="console-static"),
    ]
