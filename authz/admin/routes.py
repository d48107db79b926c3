"""The admin API's route table (mounted at ``/api/v1`` by :mod:`authz.routes`)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from authz.admin import agents, budget_use, budgets, metering, policies, teams
from authz.admin.api import Operation, route
from authz.admin.openapi import openapi_route

OPERATIONS: list[Operation] = [
    *agents.OPERATIONS,
    *teams.OPERATIONS,
    *budgets.OPERATIONS,
    *budget_use.OPERATIONS,
    *metering.OPERATIONS,
    *policies.OPERATIONS,
]


def admin_routes() -> list[BaseRoute]:
    return [*(route(op) for op in OPERATIONS), openapi_route(OPERATIONS)]
