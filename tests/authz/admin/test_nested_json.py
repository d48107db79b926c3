"""Deeply nested JSON on every admin API body: a 400 RFC 9457 problem naming the body, never a 500.

15,000 ``[`` fit under each operation's size limit and made ``json.loads`` raise ``RecursionError``
(not a ``ValueError``), which the catch-all turned into 500.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from authz.admin.routes import OPERATIONS
from authz.storage.models.base import Base
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS, ASFactory

pytestmark = pytest.mark.anyio

DEEP = b"[" * 15_000
SCOPES = "admin:read admin:write metering:write metering:read budgets:use subjects:admin approvals:check"


def _rows(srv: AS) -> dict[str, int]:
    engine: sa.Engine = srv.ctx.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


async def test_every_body_operation_refuses_deep_json_with_a_400_problem(as_factory: ASFactory) -> None:
    srv = await as_factory()
    headers = {"Authorization": f"Bearer {await admin_token(srv, SCOPES)}", "Content-Type": "application/json"}
    srv.ctx.audit.flush()
    before = _rows(srv)
    body_ops = [op for op in OPERATIONS if op.body is not None]
    assert {"/agents", "/policies", "/metering/events"} <= {op.path for op in body_ops}
    for op in body_ops:
        path = op.path.replace("{", "").replace("}", "")  # any id: the body is refused before the handler
        for body in (DEEP, b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}"):
            r = await srv.http.request(op.method, "/api/v1" + path, content=body, headers=headers)
            assert r.status_code == 400, (op.method, op.path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["status"] == 400 and problem["errors"][0]["field"] == "body", problem
            assert "nested more than" in problem["detail"]
    srv.ctx.audit.flush()
    assert _rows(srv) == before
