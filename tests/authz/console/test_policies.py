"""Policy pages: a validation error is located (file, line, column, the line marked), nothing changes;
a valid edit deploys through the same function as PUT /api/v1/policies; diff; simulator."""

from __future__ import annotations

import html

import pytest

from tests.authz.conftest import AS, ASFactory
from tests.authz.console.conftest import PASSWORD, ROLES, Console, csrf_of, sign_in

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db_console(as_factory: ASFactory) -> Console:
    from authz.identity.users import create_user

    authz: AS = await as_factory(dev_mode=False, console_roles=ROLES, policies="db")
    create_user(authz.ctx.store, "victor", PASSWORD)
    r = await sign_in(authz, "alice")
    assert r.status_code == 200
    return Console(authz, authz.http, "alice", csrf_of(r.text))


async def test_error_is_located_and_nothing_changes(db_console: Console) -> None:
    c = db_console
    page = await c.get("/policies?file=servers/demo.cedar")
    text = page.text.split('name="text" rows="18" spellcheck="false">', 1)[1].split("</textarea>", 1)[0]
    broken = html.unescape(text)
    lines = broken.count("\n") + 2
    r = await c.post("/policies/edit", {"file": "servers/demo.cedar", "text": broken + "\nforbid (principal;\n",
                                        "do": "validate"})  # fmt: skip
    assert r.status_code == 422
    assert f"servers/demo.cedar:{lines}:" in r.text
    assert 'data-test="bad-line"' in r.text
    assert c.authz.ctx.store.list_policy_versions() == []  # type: ignore[attr-defined]


async def test_deploy_diff_and_simulate(db_console: Console) -> None:
    c = db_console
    page = await c.get("/policies?file=servers/demo.cedar")
    text = page.text.split('spellcheck="false">', 1)[1].split("</textarea>", 1)[0]
    text = html.unescape(text)
    edited = text.replace('"tools:write", "tools:admin"]', '"tools:write"]')
    assert edited != text
    r = await c.post("/policies/edit", {"file": "servers/demo.cedar", "text": edited, "do": "deploy",
                                        "comment": "why"})  # fmt: skip
    assert r.status_code == 303, r.text[:500]
    rows = c.authz.ctx.store.list_policy_versions()  # type: ignore[attr-defined]
    assert [(v.version, v.author, v.comment) for v in rows] == [(1, "console:alice", "why")]
    assert c.authz.ctx.policy.version == 1
    diff = await c.get("/policies/versions/1")
    assert (
        diff.status_code == 200
        and "-  [&#34;tools:read&#34;, &#34;tools:write&#34;, &#34;tools:admin&#34;]" in diff.text
    )
    sim = await c.post("/policies/simulate", {"kind": "agent", "principal": "agt_x",
                                              "server": "http://127.0.0.1:9/mcp", "scopes": "tools:read tools:admin",
                                              "grant_type": "client_credentials"})  # fmt: skip
    assert sim.status_code == 200
    assert "demo.loopback-tools" in sim.text and "deny" in sim.text
    c.authz.ctx.audit.flush()
    assert any(e.event == "policy.deployed" for e in c.authz.ctx.store.list_audit(0, 500))


async def _demo_text(c: Console) -> str:
    page = await c.get("/policies?file=servers/demo.cedar")
    return html.unescape(page.text.split('spellcheck="false">', 1)[1].split("</textarea>", 1)[0])


QUESTION = {"kind": "agent", "principal": "agt_x", "server": "http://127.0.0.1:9/mcp",
            "scopes": "tools:read tools:admin", "grant_type": "client_credentials"}  # fmt: skip


@pytest.mark.parametrize("user", ["alice", "victor"])
async def test_simulate_a_draft_before_deploying_it(as_factory: ASFactory, user: str) -> None:
    """The draft (not deployed) decides: tools:admin is denied by the draft while the active set still
    permits it, with the deciding policies; nothing is stored and the active set is unchanged."""
    from authz.identity.users import create_user

    authz: AS = await as_factory(dev_mode=False, console_roles=ROLES, policies="db")
    create_user(authz.ctx.store, "victor", PASSWORD)
    r = await sign_in(authz, user)
    c = Console(authz, authz.http, user, csrf_of(r.text))
    text = await _demo_text(c)
    draft = text.replace('"tools:write", "tools:admin"]', '"tools:write"]')
    assert draft != text
    r = await c.post("/policies/edit", {"file": "servers/demo.cedar", "text": draft, "do": "simulate", **QUESTION})
    assert r.status_code == 200, r.text[:500]
    decision = r.text.split('data-test="decision"', 1)[1]
    rows = decision.split('data-test="draft-row"')[1:]
    assert len(rows) == 2
    assert "tools:read" in rows[0] and "permit" in rows[0] and "demo.loopback-tools" in rows[0]
    assert "tools:admin" in rows[1] and ">deny<" in rows[1] and "permit" in rows[1] and 'data-test="changed"' in rows[1]
    assert html.escape(draft, quote=False) in r.text.replace("&#34;", '"')  # the draft stays in the editor
    assert authz.ctx.store.list_policy_versions() == []  # type: ignore[attr-defined]
    active = await c.post("/policies/simulate", QUESTION)
    assert "tools:admin" in active.text and 'data-test="draft-row"' not in active.text
    assert ">deny<" not in active.text.split('data-test="decision"', 1)[1]


async def test_a_broken_draft_is_located_not_simulated(db_console: Console) -> None:
    c = db_console
    text = await _demo_text(c)
    r = await c.post("/policies/edit", {"file": "servers/demo.cedar", "text": text + "\nforbid (principal;\n",
                                        "do": "simulate", **QUESTION})  # fmt: skip
    assert r.status_code == 422 and 'data-test="problem"' in r.text and 'data-test="decision"' not in r.text
