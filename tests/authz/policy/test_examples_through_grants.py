"""Every shipped policy, through the real grant paths: each ALLOW/DENY example in ``policies/tests`` is
replayed against the token endpoint (client_credentials, token exchange) or the authorization endpoint
(sign-in, consent, code), with the principal the example describes created for real (an agent with its
team, owner and tags; a user with their groups), and must come out the same way, decided by the same
policies, as ``authz policy test`` says.

The only thing the test sets is the clock policies see (``PolicyEngine.clock``), to the example's time.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

import policies
from authz.identity.agents.credentials import issue_credential
from authz.identity.agents.lifecycle import Agents, create_agent, create_team
from authz.identity.registry import register_resource
from authz.identity.users import create_user, set_groups
from tests.authz.conftest import AS, REDIRECT, ASFactory, pkce_pair, redirect_params

pytestmark = pytest.mark.anyio

TE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
PASSWORD = "correct horse battery"
BUSINESS_HOURS = datetime.fromisoformat("2025-06-03T10:00:00+00:00")  # a Tuesday: users obtain what they delegate
EXAMPLES = sorted((policies.DEFAULT_DIR / "tests").glob("*/*.json"))
UID = re.compile(r'^Authz::(\w+)::"(.*)"$')


@dataclass
class Example:
    path: Path
    allow: bool
    kind: str  # Agent | User | Client
    principal_id: str
    server: str
    scope: str
    context: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # a User principal's Group parents
    expect: list[str] | None = None

    @classmethod
    def load(cls, path: Path) -> Example:
        doc = json.loads(path.read_text())
        kind_match, res_match = UID.match(doc["principal"]), UID.match(doc["resource"])
        assert kind_match and res_match, path
        server, scope = res_match.group(2).rsplit("#", 1)
        me = next((e for e in doc.get("entities", []) if e["uid"]["id"] == kind_match.group(2)), {})
        return cls(
            path=path,
            allow=path.parent.name == "ALLOW",
            kind=kind_match.group(1),
            principal_id=kind_match.group(2),
            server=server,
            scope=scope,
            context=doc["context"],
            attrs=me.get("attrs", {}),
            groups=[p["id"] for p in me.get("parents", []) if p["type"] == "Authz::Group"],
            expect=doc.get("expect_policies"),
        )

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.context["time"].replace("Z", "+00:00"))


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1).replace("&amp;", "&")


def _audit(server: AS, *names: str) -> list[dict[str, Any]]:
    server.ctx.audit.flush()
    return [
        {"event": e.event, "reason": e.reason, "resource": e.resource, **e.detail}
        for e in server.ctx.store.list_audit(0, 10_000)
        if e.event in names
    ]


class Driver:
    """Creates what an example names and runs its grant path through HTTP."""

    def __init__(self, server: AS) -> None:
        self.server = server
        self.ctx = server.ctx
        self.deps = Agents.from_context(self.ctx)
        self.http: httpx2.AsyncClient = server.http
        for team in ("payments", "support"):
            create_team(self.deps, name=team, actor="test")

    def at(self, when: datetime) -> None:
        self.ctx.policy.clock = lambda: when

    def offer(self, ex: Example) -> None:
        """Register the example's MCP server, offering its scope (and the demo scopes on the demo server)."""
        current = self.ctx.directory.resource(ex.server)
        scopes = set(current.scopes) if current is not None else set()
        register_resource(self.ctx.store, self.ctx.store, self.ctx.keyring, ex.server, sorted(scopes | {ex.scope}))
        self.ctx.directory.invalidate("resource", ex.server)

    def user(self, name: str, groups: list[str]) -> None:
        if self.ctx.store.get_user_by_name(name) is None:
            create_user(self.ctx.store, name, PASSWORD)
        set_groups(self.ctx.store, name, groups)

    def agent(self, name: str, attrs: dict[str, Any]) -> tuple[str, str]:
        row = create_agent(
            self.deps,
            name=name,
            team=attrs.get("team"),
            owner=attrs.get("owner"),
            tags=list(attrs.get("tags", [])),
            actor="test",
        )
        issued = issue_credential(self.deps, row.id, kind="secret", actor="test")
        assert issued.secret is not None
        return row.id, issued.secret

    async def client_credentials(self, ex: Example) -> httpx2.Response:
        if ex.kind == "Client":
            reg = self.server.machine_client(ex.principal_id)
            auth = (reg.client_id, reg.client_secret or "")
        else:
            auth = self.agent(ex.principal_id, ex.attrs)
        data = {"grant_type": "client_credentials", "resource": ex.server, "scope": ex.scope}
        return await self.http.post("/token", data=data, auth=auth)

    async def sign_in_and_consent(self, username: str, server: str, scope: str) -> dict[str, str]:
        """The authorization code flow as a browser runs it: sign-in page, consent page, code, token.
        Returns the token response, or the error redirect's parameters."""
        client_id = "cli_1"
        if self.ctx.store.get_client(client_id) is None:
            self.server.public_client(client_id)
        self.http.cookies.clear()
        verifier, challenge = pkce_pair()
        r = await self.server.authorize(
            client_id, resource=server, scope=scope, code_challenge=challenge, code_challenge_method="S256"
        )
        assert r.status_code == 200 and "Sign in" in r.text, r.text
        form = {
            "csrf_token": _hidden(r.text, "csrf_token"),
            "request": _hidden(r.text, "request"),
            "username": username,
            "password": PASSWORD,
        }
        login = await self.http.post("/authorize/login", data=form)
        assert login.status_code == 303, login.text
        page = await self.http.get(login.headers["location"])
        if page.status_code in (302, 303):
            return redirect_params(page)  # refused before consent: nothing to ask
        assert page.status_code == 200 and "Authorize access" in page.text, page.text
        approved = await self.http.post(
            "/authorize/consent",
            data={"csrf_token": _hidden(page.text, "csrf_token"), "request": form["request"], "decision": "approve"},
        )
        assert approved.status_code in (302, 303), approved.text
        q = redirect_params(approved)
        if "code" not in q:
            return q
        data = {
            "grant_type": "authorization_code",
            "code": q["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": server,
        }
        t = await self.http.post("/token", data=data)
        assert t.status_code == 200, t.text
        body: dict[str, str] = t.json()
        return body

    async def exchange(self, ex: Example) -> httpx2.Response:
        """A user's token, passed down ``act_depth`` agents; the last one is the example's principal."""
        user = ex.context["user"]
        self.user(user, list(ex.context.get("user_groups", [])))
        self.at(BUSINESS_HOURS)
        held = await self.sign_in_and_consent(user, ex.server, ex.scope)
        assert "access_token" in held, f"the delegating user cannot obtain {ex.scope}: {held}"
        token = held["access_token"]
        workflow = ex.context.get("workflow")
        hops = [self.agent(f"hop{i}", {**ex.attrs, "tags": []}) for i in range(ex.context["act_depth"] - 1)]
        hops.append(self.agent(ex.principal_id, ex.attrs))
        response: httpx2.Response | None = None
        for i, auth in enumerate(hops):
            last = i == len(hops) - 1
            if last:
                self.at(ex.time)
            data = {
                "grant_type": TE,
                "subject_token": token,
                "subject_token_type": ACCESS,
                "resource": ex.server,
                "scope": ex.scope,
            }
            if workflow:
                data["workflow"] = workflow
            response = await self.http.post("/token", data=data, auth=auth)
            if not last:
                assert response.status_code == 200, f"hop {i + 1}: {response.text}"
                token = response.json()["access_token"]
        assert response is not None
        return response


@pytest.fixture
async def driver(as_factory: ASFactory) -> Driver:
    server = await as_factory(dev_mode=False)  # real sign-in and consent pages
    return Driver(server)


def test_every_shipped_policy_has_an_example() -> None:
    """Each policy of the shipped set decides at least one example (so each is proven below)."""
    bundle = policies.load_default()
    named = {p for path in EXAMPLES for p in (Example.load(path).expect or [])}
    assert set(bundle.policy_ids) <= named, set(bundle.policy_ids) - named


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_the_example_decides_the_same_through_the_grant_path(driver: Driver, path: Path) -> None:
    ex = Example.load(path)
    driver.offer(ex)
    grant = ex.context["grant_type"]
    if grant == "authorization_code":
        assert ex.kind == "User"
        driver.user(ex.principal_id, ex.groups)
        driver.at(ex.time)
        result = await driver.sign_in_and_consent(ex.principal_id, ex.server, ex.scope)
        events = _audit(driver.server, "code.issued")
        if ex.allow:
            assert result.get("scope") == ex.scope, result
        else:
            assert result.get("error") == "invalid_scope", result
            assert events == []
            return
    elif grant == "client_credentials":
        assert not ex.context["delegated"]
        driver.at(ex.time)
        r = await driver.client_credentials(ex)
        events = _audit(driver.server, "token.issued", "token.refused")
        if ex.allow:
            assert r.status_code == 200 and r.json()["scope"] == ex.scope, r.text
        else:
            assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
    else:
        assert grant == "token_exchange" and ex.context["delegated"] and ex.kind == "Agent"
        r = await driver.exchange(ex)
        events = _audit(driver.server, "token.exchanged", "token.refused")
        if ex.allow:
            assert r.status_code == 200 and r.json()["scope"] == ex.scope, r.text
        else:
            assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
    last = events[-1]
    assert last["event"] != "token.refused" if ex.allow else last["event"] == "token.refused"
    if not ex.allow:
        assert last["reason"] == "policy_denied" and last["resource"] == ex.server
    if ex.expect is not None:
        assert sorted(last.get("policies") or []) == sorted(ex.expect), last


async def test_a_quarantined_agent_is_refused_at_the_token_endpoint(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    """base.forbid-quarantined-agents bites at /token: the agent's tags reach Cedar; the refusal is
    logged naming the deciding policy (and no secret); removing the tag gives the token back."""
    caplog.set_level(logging.INFO, logger="authz.policy")
    ex = Example.load(policies.DEFAULT_DIR / "tests" / "ALLOW" / "client_on_demo.json")
    driver.offer(ex)
    agent_id, secret = driver.agent("suspect", {"team": "support", "tags": ["quarantined"]})
    data = {"grant_type": "client_credentials", "resource": ex.server, "scope": "tools:read"}
    refused = await driver.http.post("/token", data=data, auth=(agent_id, secret))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    assert _audit(driver.server, "token.refused")[-1]["policies"] == ["base.forbid-quarantined-agents"]
    lines = [r.getMessage() for r in caplog.records if r.name == "authz.policy"]
    assert any(
        agent_id in line and "tools:read forbidden by base.forbid-quarantined-agents" in line and ex.server in line
        for line in lines
    ), lines
    assert not any(secret in line for line in lines)
    from authz.identity.agents.lifecycle import update_agent

    update_agent(driver.deps, agent_id, tags=[], actor="test")
    again = await driver.http.post("/token", data=data, auth=(agent_id, secret))
    assert again.status_code == 200 and again.json()["scope"] == "tools:read"


async def test_teams_are_named_in_policies_as_the_cli_names_them(driver: Driver) -> None:
    """``authz agents create pay-bot --team payments`` then a token for payments:read: the shipped
    ``payments.team-read`` names the team ``payments``, and that is what the AS passes."""
    ex = Example.load(policies.DEFAULT_DIR / "tests" / "ALLOW" / "payments_agent_reads.json")
    driver.offer(ex)
    agent_id, secret = driver.agent("pay-bot", {"team": "payments"})
    data = {"grant_type": "client_credentials", "resource": ex.server, "scope": "payments:read"}
    r = await driver.http.post("/token", data=data, auth=(agent_id, secret))
    assert r.status_code == 200 and r.json()["scope"] == "payments:read", r.text
    assert r.json()["access_token"]
