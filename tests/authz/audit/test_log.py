"""The audit trail: what is recorded, that it never holds secrets, and that tampering is detected."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import update

from authz.audit.verify import verify_log
from authz.storage.models import AuditEvent
from tests.authz.conftest import AS

pytestmark = pytest.mark.anyio


def _rows(authz: AS) -> list[dict[str, object]]:
    authz.ctx.audit.flush()
    cols = (
        "seq",
        "at",
        "event",
        "outcome",
        "client_id",
        "subject",
        "resource",
        "reason",
        "detail",
        "prev_hash",
        "hash",
    )
    return [{c: getattr(e, c) for c in cols} for e in authz.ctx.store.list_audit(0, 10_000)]


@pytest.mark.requirement("rfc6819:no-secrets-in-logs")
async def test_flows_are_audited_without_any_secret_or_token(authz: AS, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    authz.public_client()
    tokens, code = await authz.code_flow("public-app")
    reg = authz.machine_client()
    cc = (await authz.client_credentials(reg)).json()
    await authz.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": "x"}, auth=(reg.client_id, "wrong-secret")
    )
    rows = _rows(authz)
    events = {r["event"] for r in rows}
    assert {"code.issued", "token.issued", "token.refused"} <= events
    dump = json.dumps(rows) + caplog.text  # neither the audit trail nor any log line
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        code,
        cc["access_token"],
        str(reg.client_secret),
        "wrong-secret",
    ):
        assert secret not in dump


async def test_detail_keys_that_could_hold_secrets_are_dropped(authz: AS) -> None:
    authz.ctx.audit.record("test.event", client_id="c", client_secret="s3cret", code="abc", note="kept")
    row = next(r for r in _rows(authz) if r["event"] == "test.event")
    assert row["detail"] == {"note": "kept"}


@pytest.mark.requirement("euaiact:tamper-evident-logs")
async def test_editing_a_stored_event_breaks_the_chain(authz: AS) -> None:
    reg = authz.machine_client()
    for _ in range(3):
        await authz.client_credentials(reg)
    rows = _rows(authz)
    assert _problems(authz) == []
    victim = int(str(rows[1]["seq"]))
    with authz.ctx.store.sessions.begin() as s:  # type: ignore[attr-defined]
        s.execute(update(AuditEvent).where(AuditEvent.seq == victim).values(subject="someone-else"))
    assert _problems(authz) == [
        f"record seq {victim} differs from its stored line (exports copy it)",
        f"record seq {victim} was altered (chain hash)",
        f"record seq {victim} does not match its tree leaf {victim - 1}",
    ]


def _problems(authz: AS) -> list[str]:
    ctx = authz.ctx
    assert ctx.audit_store is not None and ctx.checkpointer is not None
    ctx.audit.flush()
    return verify_log(ctx.audit_store, [ctx.checkpointer.verifier], ctx.settings.log_origin, []).problems


async def test_every_refused_token_request_is_a_record(authz: AS) -> None:
    """A wrong secret, an unknown scope and a suspended agent: three refusals, three records."""
    from authz.identity.agents import credentials as creds
    from authz.identity.agents import lifecycle as lc
    from tests.authz.conftest import RESOURCE

    reg = authz.machine_client()
    deps = lc.Agents.from_context(authz.ctx)
    agent = lc.create_agent(deps, name="bot", actor="test")
    secret = creds.issue_credential(deps, agent.id, kind="secret", actor="test").secret
    lc.suspend_agent(deps, agent.id, actor="test", reason="stop")
    wrong = await authz.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": RESOURCE}, auth=(reg.client_id, "wrong")
    )
    scope = await authz.client_credentials(reg, scope="no:such-scope")
    suspended = await authz.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": RESOURCE}, auth=(agent.id, str(secret))
    )
    assert (wrong.status_code, scope.status_code, suspended.status_code) == (401, 400, 400)
    refused = [r for r in _rows(authz) if r["event"] == "token.refused"]
    assert [(r["client_id"], r["outcome"]) for r in refused] == [
        (reg.client_id, "failure"),
        (reg.client_id, "failure"),
        (agent.id, "failure"),
    ]
    assert refused[1]["reason"] == "invalid_scope"
    assert all(r["reason"] for r in refused)
