"""The admin API's route table (mounted at ``/api/v1`` by :mod:`authz.routes`)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from authz.admin import (
    agents,
    billing,
    budget_use,
    budgets,
    invoices,
    licenses,
    metering,
    policies,
    policy_tests,
    subjects,
    teams,
)
from authz.admin import licensing_http as licensing
from authz.admin.api import Operation, routes
from authz.admin.openapi import openapi_route
from authz.compliance import incidents_http, oversight_http

OPERATIONS: list[Operation] = [
    *agents.OPERATIONS,
    *teams.OPERATIONS,
    *budgets.OPERATIONS,
    *budget_use.OPERATIONS,
    *metering.OPERATIONS,
    *policies.OPERATIONS,
    *policy_tests.OPERATIONS,
    *licenses.OPERATIONS,
    *billing.OPERATIONS,
    *invoices.OPERATIONS,
    *subjects.OPERATIONS,
    *oversight_http.OPERATIONS,
    *incidents_http.OPERATIONS,
]

# key-authenticated and open licensing endpoints: before the operations, so /licenses/me is not a license id
LICENSING_ROUTES: list[BaseRoute] = [
    Route("/licenses/actions/validate-key", licensing.validate_key, methods=["POST"]),
    Route("/licenses/jwks", licensing.jwks, methods=["GET"]),
    Route("/licenses/me", licensing.me, methods=["GET"]),
    Route("/licenses/me/checkout", licensing.checkout, methods=["POST"]),
    Route("/machines/actions/activate", licensing.activate, methods=["POST"]),
    Route("/machines/{machine_id}/actions/heartbeat", licensing.heartbeat, methods=["POST"]),
    Route("/machines/{machine_id}/actions/deactivate", licensing.deactivate, methods=["POST"]),
]


def admin_routes() -> list[BaseRoute]:
    return [*LICENSING_ROUTES, *routes(OPERATIONS), openapi_route(OPERATIONS)]
