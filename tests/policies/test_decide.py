"""decide / explain / generate_server_actions / diff."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policies
from policies import Context, Principal, Request
from policies.__main__ import main
from policies.bundle import ACTION, scope_uid

PAY = "https://pay.example/mcp"
TUESDAY_10 = datetime(2025, 6, 3, 10, 0, tzinfo=UTC)


def req(principal: Principal, resource: str, scopes: list[str], **ctx: object) -> Request:
    ctx.setdefault("grant_type", "client_credentials")
    ctx.setdefault("time", TUESDAY_10)
    return Request(principal, "cli_1", resource, scopes, Context(**ctx))  # type: ignore[arg-type]


def test_demo_is_permitted_on_any_loopback_port(bundle: policies.PolicyBundle) -> None:
    for uri in (
        "http://127.0.0.1:9200/mcp",
        "http://127.0.0.1:9311/mcp",
        "http://localhost:1/mcp",
        "http://[::1]:80/mcp",
    ):
        d = bundle.decide(req(Principal("user", "demo"), uri, ["tools:read", "tools:write", "tools:admin", "x"]))
        assert d.permitted == {"tools:read", "tools:write", "tools:admin"}, uri
        assert d.by_scope["tools:read"].policies == ("demo.loopback-tools",)
        assert d.by_scope["x"] == policies.ScopeDecision(allowed=False, policies=())


def test_non_loopback_lookalike_gets_nothing(bundle: policies.PolicyBundle) -> None:
    d = bundle.decide(req(Principal("agent", "a"), "http://127.0.0.1.evil.example:9200/mcp", ["tools:read"]))
    assert d.permitted == frozenset()
    assert d.denied == {"tools:read"}


def test_forbid_wins_and_is_named(bundle: policies.PolicyBundle) -> None:
    agent = Principal("agent", "agt", team="payments")
    d = bundle.decide(req(agent, PAY, ["payments:read"], delegated=True, user="u", act_depth=4))
    assert d.permitted == frozenset()
    assert d.reasons == ("base.forbid-deep-delegation",)
    d = bundle.decide(req(agent, PAY, ["payments:read"], delegated=True, user="u", act_depth=3))
    assert d.permitted == {"payments:read"}
    assert d.reasons == ("payments.team-read",)


def test_team_tags_and_groups_reach_cedar(bundle: policies.PolicyBundle) -> None:
    assert bundle.decide(req(Principal("agent", "a", team="support"), PAY, ["payments:read"])).permitted == frozenset()
    q = Principal("agent", "a", team="payments", tags=["quarantined"])
    assert bundle.decide(req(q, PAY, ["payments:read"])).reasons == ("base.forbid-quarantined-agents",)
    finance = Principal("user", "alice", groups=["finance"])
    assert bundle.decide(req(finance, PAY, ["payments:read"])).permitted == {"payments:read"}


def test_workflow_and_time(bundle: policies.PolicyBundle) -> None:
    agent = Principal("agent", "agt", team="payments")
    ok = {"delegated": True, "user": "alice", "user_groups": ["finance"], "act_depth": 1, "workflow": "refund-review"}
    assert bundle.decide(req(agent, PAY, ["payments:refund"], **ok)).permitted == {"payments:refund"}
    night = datetime(2025, 6, 3, 22, 0, tzinfo=UTC)
    assert bundle.decide(req(agent, PAY, ["payments:refund"], **{**ok, "time": night})).permitted == frozenset()
    other = {**ok, "workflow": "month-end"}
    assert bundle.decide(req(agent, PAY, ["payments:refund"], **other)).permitted == frozenset()


def test_no_scopes_no_grant(bundle: policies.PolicyBundle) -> None:
    d = bundle.decide(req(Principal("user", "demo"), "http://127.0.0.1:9200/mcp", []))
    assert d.permitted == frozenset()
    assert d.by_scope == {}


def test_cached_decision_is_the_same(bundle: policies.PolicyBundle) -> None:
    r = req(Principal("agent", "agt", team="payments"), PAY, ["payments:read", "payments:write"])
    assert bundle.decide(r) == bundle.decide(r)
    changed = req(Principal("agent", "agt", team="payments", tags=["quarantined"]), PAY, ["payments:read"])
    assert bundle.decide(changed).permitted == frozenset()


SCOPES = ["payments:read", "payments:write", "payments:refund", "tools:read", "tools:write", "tools:admin", "other"]
SERVERS = [PAY, "http://127.0.0.1:9200/mcp", "http://127.0.0.1:7/mcp", "https://other.example/mcp"]


@st.composite
def requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["agent", "user", "client"]))
    principal = Principal(
        kind,
        draw(st.sampled_from(["p1", "p2"])),
        team=draw(st.sampled_from([None, "payments", "support"])) if kind == "agent" else None,
        tags=draw(st.lists(st.sampled_from(["quarantined", "batch"]), max_size=2)) if kind == "agent" else (),
        groups=draw(st.lists(st.sampled_from(["finance", "engineering"]), max_size=2)) if kind == "user" else (),
    )
    delegated = draw(st.booleans())
    context = Context(
        grant_type=draw(st.sampled_from(["client_credentials", "token_exchange", "authorization_code"])),
        delegated=delegated,
        user="alice" if delegated else None,
        user_groups=draw(st.lists(st.sampled_from(["finance", "engineering"]), max_size=2)) if delegated else (),
        act_depth=draw(st.integers(0, 6)),
        workflow=draw(st.sampled_from([None, "refund-review", "other"])),
        time=datetime(2025, 6, draw(st.integers(1, 14)), draw(st.integers(0, 23)), tzinfo=UTC),
    )
    return Request(principal, "cli_1", draw(st.sampled_from(SERVERS)), draw(st.lists(st.sampled_from(SCOPES))), context)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests())
def test_granted_is_requested_and_permitted_by_brute_force(bundle: policies.PolicyBundle, r: Request) -> None:
    decision = bundle.decide(r)
    ctx = bundle.context_json(r)
    brute: set[str] = set()
    for scope in set(r.scopes):
        alone = Request(r.principal, r.client_id, r.resource, [scope], r.context)
        entities = bundle._request_entities(alone, (scope,))
        principal = {"type": f"Authz::{r.principal.kind.capitalize()}", "id": r.principal.id}
        one = {"principal": principal, "action": ACTION, "resource": scope_uid(r.resource, scope), "context": ctx}
        if cedarpy.is_authorized(one, bundle.policy_set, entities, bundle.schema).allowed:
            brute.add(scope)
    assert decision.permitted <= set(r.scopes)
    assert decision.permitted == brute
    assert not decision.errors


def test_explain_names_deciding_policies_with_location(bundle: policies.PolicyBundle) -> None:
    agent = Principal("agent", "agt", team="payments")
    text = bundle.explain(req(agent, PAY, ["payments:read", "payments:write"], delegated=True, user="u", act_depth=5))
    origin = bundle.origins["base.forbid-deep-delegation"]
    assert f"payments:read   DENY   forbidden by base.forbid-deep-delegation (base.cedar:{origin.line}:1)" in text
    text = bundle.explain(req(agent, PAY, ["payments:read", "payments:write"]))
    assert "payments:read   ALLOW  permitted by payments.team-read (servers/payments.cedar:" in text
    assert "payments:write  DENY   no policy permits it (default deny)" in text
    assert text.endswith("granted: payments:read")


def test_cli_explain(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--principal", 'Agent::"agt_1"', "--team", "payments", "--resource", PAY]
    assert main([*argv, "--scopes", "payments:read payments:admin", "--delegated", "--act-depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "permitted by payments.team-read" in out
    assert "payments:admin" in out and "granted: payments:read" in out


def test_generated_server_entities_validate_and_plug_in(policy_dir: Path) -> None:
    tools = [{"name": "search", "inputSchema": {}}, {"name": "delete"}]
    text = policies.generate_server_actions("https://docs.example/mcp", ["docs:read", "docs:write"], tools)
    bundle = policies.load(policy_dir)
    cedarpy.Entities.from_json_str(text, bundle.schema)  # raises if it does not match the schema
    assert json.loads(text)[0]["attrs"]["tools"] == ["delete", "search"]
    (policy_dir / "servers" / "docs.entities.json").write_text(text)
    (policy_dir / "servers" / "docs.cedar").write_text(
        policies.fmt(
            '@id("docs.read") permit (principal, action, resource in Authz::McpServer::"https://docs.example/mcp")'
            ' when { resource.name == "docs:read" && resource.server has tools'
            ' && resource.server.tools.contains("search") };'
        )
    )
    loaded = policies.load(policy_dir)
    d = loaded.decide(req(Principal("client", "c"), "https://docs.example/mcp", ["docs:read", "docs:write"]))
    assert d.permitted == {"docs:read"}


def test_diff_textual_and_semantic(policy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_dir = tmp_path / "old"
    shutil.copytree(policy_dir, old_dir)
    demo = policy_dir / "servers" / "demo.cedar"
    demo.write_text(demo.read_text().replace('"tools:admin"', '"tools:other"'))
    (policy_dir / "servers" / "payments.cedar").unlink()
    (policy_dir / "servers" / "new.cedar").write_text('@id("new.rule")\nforbid (principal, action, resource);\n')
    result = policies.diff(policies.load(old_dir), policies.load(policy_dir))
    assert result.added == ("new.rule",)
    assert result.changed == ("demo.loopback-tools",)
    assert "payments.team-read" in result.removed
    if not result.semantic_available:
        assert result.semantic.startswith("not available: ")
        assert main(["diff", str(old_dir), str(policy_dir)]) == 3
        assert "semantic comparison: not available: " in capsys.readouterr().out
