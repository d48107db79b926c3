"""Cedar scope policies at every issuance: the grants narrow to what policy permits and audit why."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

import policies
from authz.identity.registry import register_resource
from tests.authz.conftest import AS, RESOURCE, ASFactory, pkce_pair, redirect_params
from tests.authz.oauth.grants.test_token_exchange import TE, exchange, user_token

pytestmark = pytest.mark.anyio
PROD = "https://mcp.example.com/mcp"  # not loopback: the embedded policy set permits nothing here


def _events(server: AS, name: str) -> list[dict[str, object]]:
    server.ctx.audit.flush()
    return [{"reason": e.reason, **e.detail} for e in server.ctx.store.list_audit(0, 10_000) if e.event == name]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A copy of the embedded set plus a rule for PROD: agents of team ``payments`` may read it."""
    target = tmp_path / "policies"
    shutil.copytree(policies.DEFAULT_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (target / "servers" / "prod.cedar").write_text(
        '@id("prod.payments-read")\n'
        "permit (\n"
        '  principal in Authz::Team::"TEAM_ID",\n'
        '  action == Authz::Action::"obtain_scope",\n'
        '  resource in Authz::McpServer::"https://mcp.example.com/mcp"\n'
        ")\n"
        'when { resource.name == "prod:read" };\n'
    )
    (target / "servers" / "prod.entities.json").write_text(
        policies.generate_server_actions(PROD, ["prod:read", "prod:write"])
    )
    return target


async def test_default_deny_refuses_a_server_no_policy_covers_and_audits_it(authz: AS) -> None:
    ctx = authz.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, PROD, ["prod:read"], "prod")
    reg = authz.machine_client()
    r = await authz.client_credentials(reg, resource=PROD)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    refused = _events(authz, "token.refused")
    assert refused and refused[-1]["reason"] == "policy_denied"


async def test_the_embedded_set_permits_the_demo_and_names_the_deciding_policy(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.client_credentials(reg, scope="tools:read")
    assert r.status_code == 200
    assert _events(authz, "token.issued")[-1]["policies"] == ["demo.loopback-tools"]


async def test_a_team_rule_grants_only_what_it_permits(as_factory: ASFactory, policy_dir: Path) -> None:
    server = await as_factory(dev_mode=True)
    ctx = server.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, PROD, ["prod:read", "prod:write"], "prod")
    from authz.identity.agents.credentials import issue_credential
    from authz.identity.agents.lifecycle import Agents, create_agent, create_team

    deps = Agents.from_context(ctx)
    team = create_team(deps, name="payments", actor="test")
    rule = policy_dir / "servers" / "prod.cedar"
    rule.write_text(rule.read_text().replace("TEAM_ID", team.name))  # policies name teams by name
    server.ctx.policy.swap(policies.load(policy_dir))
    agent_row = create_agent(deps, name="payer", team=team.id, actor="test")
    issued = issue_credential(deps, agent_row.id, kind="secret", actor="test")
    assert issued.secret is not None
    data = {"grant_type": "client_credentials", "resource": PROD, "scope": "prod:read prod:write"}
    r = await server.http.post("/token", data=data, auth=(agent_row.id, issued.secret))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "prod:read"
    assert _events(server, "token.issued")[-1]["policies"] == ["prod.payments-read"]


async def test_an_agent_acting_for_a_user_never_gets_admin_scopes(authz: AS) -> None:
    """base.forbid-delegated-admin: the user holds tools:admin, the agent exchanging their token does not get it."""
    from authz.identity.agents.credentials import issue_credential
    from authz.identity.agents.lifecycle import Agents, create_agent

    ctx = authz.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, RESOURCE, ["tools:read", "tools:write", "tools:admin"], "demo")
    ctx.directory.invalidate("resource", RESOURCE)
    subject = await user_token(authz, "tools:read tools:admin")
    deps = Agents.from_context(ctx)
    agent_row = create_agent(deps, name="helper", actor="test")
    issued = issue_credential(deps, agent_row.id, kind="secret", actor="test")
    assert issued.secret is not None
    data = {
        "grant_type": TE,
        "subject_token": subject,
        "resource": RESOURCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    r = await authz.http.post("/token", data=data, auth=(agent_row.id, issued.secret))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "tools:read"
    code_issued = _events(authz, "code.issued")[-1]
    assert code_issued["scope"] == "tools:read tools:admin"  # the user may: only the delegated agent may not
    assert "base.forbid-delegated-admin" in _events(authz, "token.exchanged")[-1]["policies"]  # type: ignore[operator]


async def test_authorization_code_is_narrowed_by_policy_when_issued(authz: AS) -> None:
    ctx = authz.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, PROD, ["prod:read"], "prod")
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize("public-app", resource=PROD, code_challenge=challenge, code_challenge_method="S256")
    q = redirect_params(r)
    assert q["error"] == "invalid_scope" and q["state"] == "st-1" and q["iss"] == "http://127.0.0.1:9100"


async def test_a_policy_change_takes_a_scope_away_from_the_next_exchange(authz: AS, tmp_path: Path) -> None:
    subject = await user_token(authz)
    reg = authz.machine_client("agent-2", grant_types=["client_credentials", TE])
    first = await exchange(authz, reg, subject, scope="tools:read tools:write")
    assert first.status_code == 200 and first.json()["scope"] == "tools:read tools:write"
    stricter = tmp_path / "stricter"
    shutil.copytree(policies.DEFAULT_DIR, stricter, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (stricter / "base.cedar").write_text(
        (stricter / "base.cedar").read_text()
        + '\n@id("base.no-delegated-writes")\nforbid (\n  principal,\n  action == Authz::Action::"obtain_scope",\n'
        '  resource\n)\nwhen { context.delegated && resource.name like "*:write" };\n'
    )
    authz.ctx.policy.swap(policies.load(stricter, check_format=False))
    second = await exchange(authz, reg, subject, scope="tools:read tools:write")
    assert second.status_code == 200 and second.json()["scope"] == "tools:read"


async def test_reloading_under_concurrent_issuance_never_fails_a_request(authz: AS) -> None:
    reg = authz.machine_client()
    default = policies.load_default()
    statuses: list[int] = []

    async def issue() -> None:
        for _ in range(20):
            statuses.append((await authz.client_credentials(reg, scope="tools:read")).status_code)

    async def reload() -> None:
        for _ in range(20):
            authz.ctx.policy.swap(policies.load_default() if len(statuses) % 2 else default)
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(issue)
        tg.start_soon(reload)
    assert statuses == [200] * 80
    assert RESOURCE


async def test_the_policies_setting_selects_a_directory_or_turns_policy_off(
    as_factory: ASFactory, policy_dir: Path
) -> None:
    off = await as_factory(policies="off")
    register_resource(off.ctx.store, off.ctx.store, off.ctx.keyring, PROD, ["prod:read"], "prod")
    reg = off.machine_client()
    assert (await off.client_credentials(reg, resource=PROD)).json()["scope"] == "prod:read"
    from authz.policy.engine import PolicyEngine

    engine = PolicyEngine.from_setting(str(policy_dir))
    assert engine.enabled and engine.bundle is not None and "prod.payments-read" in engine.bundle.policy_ids
