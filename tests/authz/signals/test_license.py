"""A license suspension reaches the Shared Signals stream: the licensing service suspends the agents it
pays for through the agent lifecycle, and each suspension is a revocation fact, hence a SET."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from authz.identity.agents import lifecycle
from authz.signals.sets import SESSION_REVOKED
from tests.authz.conftest import ISSUER, RESOURCE
from tests.authz.identity.agents.conftest import agents_db_url, deps, engines_to_dispose, server
from tests.authz.licensing.conftest import Lic, lic

__all__ = ["agents_db_url", "engines_to_dispose", "lic", "server"]

pytestmark = pytest.mark.anyio


async def test_suspending_a_license_sends_session_revoked_for_its_agents(lic: Lic) -> None:
    srv = lic.srv
    auth = (srv.rs.client_id, srv.rs.client_secret or "")
    created = await srv.http.post("/ssf/stream", json={}, auth=auth)
    assert created.status_code == 201
    poll_path = created.json()["delivery"]["endpoint_url"].removeprefix(ISSUER)
    out, _key = await lic.setup()
    agent = lifecycle.create_agent(deps(srv), name="paid-agent", actor="test")
    assert (await lic.admin_post(f"/licenses/{out['id']}/agents", {"agent_id": agent.id})).status_code == 200

    assert (await lic.admin_post(f"/licenses/{out['id']}/suspend", {"reason": "chargeback"})).status_code == 200
    r = await srv.http.post(poll_path, json={"returnImmediately": True}, auth=auth)
    keys = KeySet.import_key_set((await srv.http.get("/jwks")).json())
    claims = [jwt.decode(token, keys).claims for token in r.json()["sets"].values()]
    assert [c["sub_id"] for c in claims] == [{"format": "complex", "agent": {"format": "opaque", "id": agent.id}}]
    assert claims[0]["aud"] == RESOURCE and SESSION_REVOKED in claims[0]["events"]
