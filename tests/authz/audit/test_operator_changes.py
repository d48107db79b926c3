"""Every operator change (billing plans and prices, customers, subscriptions, credits, invoices,
billing webhooks, budgets, trust, signing keys) leaves exactly one ``<kind>.<action>`` record naming
who (``actor``), what (the event) and the target, through ``/api/v1`` and through the CLI; no secret
reaches the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authz.billing.examples import SHAPES
from authz.cli import main
from authz.storage.models.core import Team
from tests.authz.billing.conftest import API, admin_headers
from tests.authz.conftest import AS, ASFactory

WEBHOOK_SECRET = "whsec_" + "s3cr3t" * 6


def changes(records: Any, event: str) -> list[Any]:
    return [r for r in records if r.event == event]


class Admin:
    def __init__(self, srv: AS, headers: dict[str, str], actor: str) -> None:
        self.srv, self.headers, self.actor = srv, headers, actor
        self.seen = 0

    async def call(self, method: str, path: str, body: Any = None, status: int = 201) -> Any:
        r = await self.srv.http.request(method, API + path, json=body, headers=self.headers)
        assert r.status_code == status, r.text
        return r.json()

    def new_records(self) -> list[Any]:
        self.srv.ctx.audit.flush()
        rows = self.srv.ctx.store.list_audit(self.seen, 10_000)
        self.seen = rows[-1].seq if rows else self.seen
        return list(rows)

    def one(self, event: str, target: str) -> dict[str, Any]:
        """The mutation just made left exactly one record of ``event`` (and no other operator change)."""
        new = [r for r in self.new_records() if (r.detail or {}).get("operator_change")]
        assert [r.event for r in new] == [event], [r.event for r in new]
        record = new[0]
        assert record.resource == target and record.detail["actor"] == self.actor and record.outcome == "success"
        return dict(record.detail)


@pytest.fixture
async def admin(as_factory: ASFactory) -> Admin:
    srv = await as_factory(dev_mode=True)
    headers = await admin_headers(srv)
    client_id = next(c.client_id for c in srv.ctx.store.list_clients() if c.client_name == "billing")
    adm = Admin(srv, headers, client_id)
    adm.new_records()
    return adm


@pytest.mark.anyio
async def test_billing_changes_through_the_api_are_records(admin: Admin) -> None:
    await admin.call("POST", "/plans", {"id": "hybrid", "name": "Hybrid", "version": SHAPES["hybrid"]})
    detail = admin.one("plan.created", "hybrid")
    assert detail["version"] == 1 and len(detail["sha256"]) == 64
    await admin.call("POST", "/plans/hybrid/versions", SHAPES["hybrid"])
    assert admin.one("plan.version_added", "hybrid")["version"] == 2
    await admin.call("POST", "/customers", {"id": "acme", "name": "Acme", "currency": "USD", "email": "x@acme.example"})
    detail = admin.one("customer.created", "acme")
    assert detail["currency"] == "USD" and "x@acme.example" not in json.dumps(detail)
    bad = await admin.call("POST", "/customers/acme/members", {"agent_id": "agt_nope"}, status=422)
    assert "no agent 'agt_nope'" in json.dumps(bad) and "agent_id" in json.dumps(bad)  # the console's, the CLI's
    await admin.call("POST", "/customers/acme/members", {"team_id": "t1"}, status=422)  # no such team: no record
    assert [r for r in admin.new_records() if (r.detail or {}).get("operator_change")] == []
    admin.srv.ctx.store.add_team(Team(id="t1", name="core", description="", created_at=0, updated_at=0))
    await admin.call("POST", "/customers/acme/members", {"team_id": "core"}, status=200)  # by name
    assert admin.one("customer.member_added", "acme")["team"] == "t1"
    agent = await admin.call("POST", "/agents", {"name": "billed", "customer": "acme"})  # created for a customer
    assert admin.one("customer.member_added", "acme")["agent"] == agent["id"]
    sub = await admin.call("POST", "/subscriptions", {"customer_id": "acme", "plan": "hybrid@1",
                                                      "starts_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    assert admin.one("subscription.created", sub["id"])["plan_version"] == "hybrid@1"
    credit = await admin.call("POST", "/credits", {"customer_id": "acme", "amount": "10.00",
                                                   "effective_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    assert admin.one("credit.granted", credit["id"])["amount_minor"] == 1000
    closed = await admin.call("POST", "/invoices/close", {"customer_id": "acme", "at": "2026-01-10T00:00:00Z"})
    assert admin.one("invoice.finalized", closed["invoice"]["id"])["customer"] == "acme"
    await admin.call("POST", "/invoices/close", {"customer_id": "acme", "at": "2026-01-10T00:00:00Z"}, status=200)
    assert [r for r in admin.new_records() if (r.detail or {}).get("operator_change")] == []  # nothing changed
    hook = await admin.call("POST", "/billing/webhooks", {"url": "https://hooks.example/b", "secret": WEBHOOK_SECRET})
    admin.one("billing_webhook.created", hook["id"])
    await admin.call("DELETE", f"/billing/webhooks/{hook['id']}", status=200)
    admin.one("billing_webhook.deleted", hook["id"])
    everything = " ".join(str((r.detail, r.reason, r.resource)) for r in admin.srv.ctx.store.list_audit(0, 10_000))
    assert WEBHOOK_SECRET not in everything


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AUTHZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTHZ_CONFIG", raising=False)
    return tmp_path


def cli_changes(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """Run one command; the operator-change records it added."""
    assert main(["audit", "list", "--limit", "100000"]) == 0
    before = len(capsys.readouterr().out.splitlines())
    code = main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.err
    assert main(["audit", "list", "--limit", "100000"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()[before:]]
    return [r for r in rows if r["detail"].get("operator_change")]


def assert_one(rows: list[dict[str, Any]], event: str, target: str | None = None) -> dict[str, Any]:
    assert [r["event"] for r in rows] == [event], rows
    row = rows[0]
    assert row["detail"]["actor"] == "cli" and (target is None or row["resource"] == target)
    return dict(row["detail"])


def test_cli_changes_are_records(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one(cli_changes(capsys, "billing", "plan", "hybrid", "--example", "hybrid"), "plan.created", "hybrid")
    detail = assert_one(cli_changes(capsys, "billing", "plan", "hybrid", "--example", "hybrid", "--new-version"),
                        "plan.version_added", "hybrid")  # fmt: skip
    assert detail["version"] == 2
    assert_one(cli_changes(capsys, "billing", "customer", "acme", "--name", "Acme", "--currency", "USD"),
               "customer.created", "acme")  # fmt: skip
    rows = cli_changes(capsys, "billing", "subscribe", "acme", "hybrid@1", "--starts-at", "2026-01-01T00:00:00Z")
    assert assert_one(rows, "subscription.created")["customer"] == "acme"
    rows = cli_changes(capsys, "billing", "credit", "acme", "9.99", "--effective-at", "2026-01-01T00:00:00Z")
    assert assert_one(rows, "credit.granted")["amount_minor"] == 999
    rows = cli_changes(capsys, "billing", "close", "acme", "--at", "2026-01-10T00:00:00Z")
    assert assert_one(rows, "invoice.finalized")["customer"] == "acme"
    assert cli_changes(capsys, "billing", "close", "acme", "--at", "2026-01-10T00:00:00Z") == []  # already final
    assert main(["billing", "receipt", "acme", "--at", "2026-01-10T00:00:00Z"]) == 0  # through the audited path
    capsys.readouterr()
    assert main(["audit", "list", "--limit", "100000"]) == 0
    receipts = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"billing.value_receipt"' in x]
    assert len(receipts) == 1 and receipts[0]["detail"]["actor"] == "cli" and receipts[0]["resource"] == "acme"

    rows = cli_changes(capsys, "keys", "rotate")
    detail = assert_one(rows, "key.rotated")
    assert rows[0]["resource"] == detail["kid"] and detail["next_kid"]

    jwks = cli_env / "jwks.json"
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    jwks.write_text(json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA"}]}))
    rows = cli_changes(capsys, "trust", "add", "https://idp.example", "--kind", "idp", "--jwks-file", str(jwks),
                       "--algorithms", "EdDSA")  # fmt: skip
    assert assert_one(rows, "trust.added", "https://idp.example")["issuer_kind"] == "idp"
    assert_one(cli_changes(capsys, "trust", "remove", "https://idp.example"), "trust.removed", "https://idp.example")

    assert main(["agents", "create", "bot"]) == 0
    agent_id = next(line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.startswith("id:"))
    rows = cli_changes(capsys, "budgets", "create", "--agent", agent_id, "--metric", "calls", "--limit", "10",
                       "--period", "day")  # fmt: skip
    budget_id = rows[0]["resource"]
    assert assert_one(rows, "budget.created", budget_id)["subject_type"] == "agent"
    assert_one(cli_changes(capsys, "budgets", "delete", budget_id), "budget.deleted", budget_id)


@pytest.mark.anyio
async def test_every_record_of_a_mixed_workload_is_a_tree_leaf(admin: Admin) -> None:
    """Issued and refused tokens, admin changes, revocations: the tree has exactly one leaf per record."""
    from authz.storage.sql import SqlStore

    assert not hasattr(SqlStore, "append_audit")  # the only writer is authz.audit.store.AuditTreeStore
    srv = admin.srv
    reg = srv.rs
    for secret in (reg.client_secret, "wrong", "wrong"):
        await srv.http.post("/token", data={"grant_type": "client_credentials"}, auth=(reg.client_id, secret or ""))
    await admin.call("POST", "/plans", {"id": "p1", "name": "P1", "version": SHAPES["hybrid"]})
    await admin.call("POST", "/customers", {"id": "c1", "name": "C1", "currency": "USD"})
    await admin.call("POST", "/plans", {"id": "p1", "name": "P1", "version": SHAPES["hybrid"]}, status=409)
    srv.ctx.audit.flush()
    store = srv.ctx.audit_store
    assert store is not None
    rows = srv.ctx.store.list_audit(0, 100_000)
    assert len(rows) > 5 and {"token.refused", "plan.created", "customer.created"} <= {r.event for r in rows}
    assert store.tree_size() == len(rows)
    assert sorted(r.leaf_index for r in rows) == list(range(len(rows)))  # type: ignore[type-var]
