"""Console roles from user groups (``console_group_roles``) beside roles by username
(``console_roles``): the highest applies, at sign-in (the token's scopes) and at every request (a
group removed takes the role away at once)."""

from __future__ import annotations

import httpx2
import pytest

from authz.core.settings import Settings
from authz.identity.agents.lifecycle import Agents, create_agent
from authz.identity.console_roles import role_of
from authz.identity.users import create_user, set_groups
from tests.authz.conftest import AS, ASFactory
from tests.authz.console.conftest import PASSWORD, csrf_of, sign_in

pytestmark = pytest.mark.anyio


def test_role_of_takes_the_highest_of_username_and_groups() -> None:
    s = Settings(issuer="https://as.example", console_roles="sam=viewer,olga=operator",
                 console_group_roles="security=admin,finance=viewer,ops=operator")  # fmt: skip
    assert role_of(s, "gina", ["finance"]) == "viewer"
    assert role_of(s, "sam", ["security"]) == "admin"  # the group raises sam's username role
    assert role_of(s, "olga", ["finance"]) == "operator"  # a lower group role does not lower it
    assert role_of(s, "fred", ["finance", "ops"]) == "operator"
    assert role_of(s, "nobody", ["other"]) is None and role_of(s, "nobody") is None


def test_a_bad_group_role_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="security=root"):
        Settings(issuer="https://as.example", console_group_roles="security=root")


async def _session(authz: AS, username: str) -> tuple[httpx2.AsyncClient, httpx2.Response]:
    http = httpx2.AsyncClient(transport=authz.http._transport, base_url=str(authz.http.base_url))
    mine = AS(authz.app, http, authz.rs, authz.other_rs, authz.settings, authz.users)
    return http, await sign_in(mine, username)


async def test_group_roles_decide_what_a_person_may_do(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=False, console_group_roles="security=admin,finance=viewer")
    store = authz.ctx.store
    create_user(store, "gina", PASSWORD, groups=["finance"])
    create_user(store, "sam", PASSWORD, groups=["security", "finance"])
    create_user(store, "nils", PASSWORD, groups=["marketing"])
    agent = create_agent(Agents.from_context(authz.ctx), name="bot", actor="test")

    http, r = await _session(authz, "gina")
    assert r.status_code == 200 and "viewer" in r.text
    r = await http.post(f"/console/agents/{agent.id}/suspend", data={"csrf_token": csrf_of(r.text)})
    assert r.status_code == 403 and store.get_agent(agent.id).status == "active"  # type: ignore[union-attr]

    http, r = await _session(authz, "sam")
    assert r.status_code == 200 and "admin" in r.text
    csrf = csrf_of(r.text)
    r = await http.post(f"/console/agents/{agent.id}/suspend", data={"csrf_token": csrf})
    assert r.status_code == 303 and store.get_agent(agent.id).status == "suspended"  # type: ignore[union-attr]
    set_groups(store, "sam", ["finance"])  # demoted: the next request sees a viewer
    r = await http.post(f"/console/agents/{agent.id}/reinstate", data={"csrf_token": csrf})
    assert r.status_code == 403 and store.get_agent(agent.id).status == "suspended"  # type: ignore[union-attr]
    set_groups(store, "sam", [])  # no group, no role: signed out
    r = await http.get("/console/")
    assert r.status_code == 303 and "/console/login" in r.headers["location"]

    _http, r = await _session(authz, "nils")
    assert r.status_code == 403 and "no console role" in r.text
