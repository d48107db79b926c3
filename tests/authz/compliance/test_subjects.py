"""GDPR: a person's export holds what they provided and what was observed; erasure revokes what they
hold, leaves no trace of their identity in any table (every column of every row is searched), keeps
the audit log pseudonymous and every proof valid."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from authz.audit.verify import verify_log
from authz.compliance.subjects import erase_subject, export_subject, vault
from authz.identity.agents import lifecycle as lc
from authz.storage.models import Base
from authz.storage.models.compliance import SubjectProfile
from tests.authz.conftest import AS, ASFactory

pytestmark = pytest.mark.anyio
EMAIL = "zelda.q7x@example.org"


@pytest.fixture
async def authz(as_factory: ASFactory) -> AS:
    """Development mode signs in a user whose name appears nowhere else (the grep must not meet 'demo')."""
    return await as_factory(dev_mode=True, dev_user="zelda-q7x")


def every_value(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-null value in the database."""
    out = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = value.decode("latin-1") if isinstance(value, bytes) else (
                        json.dumps(value) if isinstance(value, dict | list) else str(value))  # fmt: skip
                    out.append((table.name, column, text))
    return out


def traces(engine: sa.Engine, needles: list[str]) -> list[tuple[str, str, str]]:
    return [(t, c, v[:80]) for t, c, v in every_value(engine) if any(n in v for n in needles)]


async def person(authz: AS) -> tuple[str, str, dict[str, Any]]:
    """The development user signs in, consents, gets tokens, owns an agent and has a profile."""
    authz.public_client()
    tokens, _ = await authz.code_flow("public-app")
    info = await authz.introspect(tokens["access_token"])
    subject = info["sub"]
    user = authz.ctx.store.get_user(subject)
    assert user is not None
    vault(authz.ctx).put(subject, {"email": EMAIL, "name": "Demo Person"})
    lc.create_agent(lc.Agents.from_context(authz.ctx), name="helper", owner=subject, actor="test")
    authz.ctx.audit.record("login.succeeded", subject=subject, ip="203.0.113.77")
    authz.ctx.audit.flush()
    return subject, user.username, tokens


@pytest.mark.requirement("gdpr:art20-export")
async def test_export_holds_provided_and_observed_data(authz: AS) -> None:
    subject, username, _ = await person(authz)
    doc = export_subject(authz.ctx, subject, "test")
    assert doc["account"]["username"] == username and doc["profile"]["email"] == EMAIL
    assert isinstance(doc["consents"], list)  # development mode consents without storing one
    assert doc["delegations"] and doc["agents_created"][0]["name"] == "helper"
    events = {r["event"] for r in doc["activity"]["records"]}
    assert {"code.issued", "token.issued", "login.succeeded"} <= events


@pytest.mark.requirement("gdpr:art17-erasure")
async def test_erasure_revokes_deletes_and_leaves_no_identity_anywhere(authz: AS) -> None:
    subject, username, tokens = await person(authz)
    assert (await authz.introspect(tokens["access_token"]))["active"] is True
    engine: sa.Engine = authz.ctx.store.engine  # type: ignore[attr-defined]
    needles = [subject, username, EMAIL, "203.0.113.77"]
    assert traces(engine, needles)  # the person is in the database before

    result = erase_subject(authz.ctx, subject, "test")
    assert result["erased"]["grants_revoked"] == 1 and result["erased"]["profile_key"] == 1
    assert {k["what"] for k in result["kept"]} >= {"audit records"}
    assert (await authz.introspect(tokens["access_token"]))["active"] is False
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "public-app"}
    refreshed = await authz.http.post("/token", data=form)
    assert refreshed.status_code == 400
    authz.ctx.audit.flush()
    assert traces(engine, needles) == []
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(SubjectProfile)) == 0
    ctx = authz.ctx
    assert ctx.audit_store is not None and ctx.checkpointer is not None
    assert ctx.checkpointer.sign() is not None
    assert verify_log(ctx.audit_store, [ctx.checkpointer.verifier], ctx.settings.log_origin, []).problems == []


async def test_the_admin_api_needs_its_own_scope_and_audits(authz: AS) -> None:
    subject, _, _ = await person(authz)
    from tests.authz.admin.conftest import admin_token

    async def token(scope: str) -> str:
        return await admin_token(authz, scope, name="dpo")

    admin = {"Authorization": f"Bearer {await token('admin:read admin:write')}"}
    refused = await authz.http.post(f"/api/v1/subjects/{subject}/erase", headers=admin)
    assert refused.status_code == 403
    dpo = {"Authorization": f"Bearer {await token('subjects:admin')}"}
    exported = await authz.http.get(f"/api/v1/subjects/{subject}/export", headers=dpo)
    assert exported.status_code == 200 and exported.json()["$schema"].endswith("subject-export/v1")
    erased = await authz.http.post(f"/api/v1/subjects/{subject}/erase", headers=dpo)
    assert erased.status_code == 200 and erased.json()["erased"]["account"] == 1
    again = await authz.http.post(f"/api/v1/subjects/{subject}/erase", headers=dpo)
    assert again.status_code == 404
    authz.ctx.audit.flush()
    events = [(e.event, e.detail.get("actor")) for e in authz.ctx.store.list_audit(0, 1000)]
    actors = {actor for event, actor in events if event in ("subject.exported", "subject.erased")}
    assert len(actors) == 1 and actors != {"test"}  # the admin client that called
