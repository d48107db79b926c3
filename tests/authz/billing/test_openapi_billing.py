"""The billing routes are in the OpenAPI document, with their scopes and problem responses."""

from __future__ import annotations

import pytest

from tests.authz.conftest import AS

pytestmark = pytest.mark.anyio

PATHS = {
    ("post", "/customers"), ("get", "/customers"), ("get", "/customers/{customer_id}"),
    ("post", "/customers/{customer_id}/members"), ("post", "/plans"), ("get", "/plans"), ("get", "/plans/{plan_id}"),
    ("post", "/plans/{plan_id}/versions"), ("post", "/subscriptions"), ("get", "/subscriptions"), ("post", "/credits"),
    ("get", "/credits"), ("get", "/customers/{customer_id}/invoice-preview"), ("get", "/invoices"),
    ("get", "/invoices/{invoice_id}"), ("post", "/invoices/close"), ("post", "/billing/webhooks"),
    ("get", "/billing/webhooks"), ("delete", "/billing/webhooks/{webhook_id}"),
    ("get", "/customers/{customer_id}/value-receipt"),
}  # fmt: skip


async def test_billing_operations_are_documented(authz: AS) -> None:
    doc = (await authz.http.get("/api/v1/openapi.json")).json()
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert PATHS <= documented
    for method, path in PATHS:
        op = doc["paths"][path][method]
        scope = "admin:write" if method in ("post", "delete") else "admin:read"
        assert op["security"] == [{"oauth2": [scope]}], (method, path)
        if method == "post":
            assert "422" in op["responses"], (method, path)
    # billing's models never overwrite another capability's schema of the same name
    assert "BillingWebhookOut" in doc["components"]["schemas"]
    assert "budget_id" not in doc["components"]["schemas"]["BillingWebhookOut"]["properties"]
