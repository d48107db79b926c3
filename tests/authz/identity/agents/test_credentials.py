"""Agent credentials at the token endpoint: secrets, public keys, revocation, rotation overlap."""

from __future__ import annotations

import time
import types
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import update

from authz.identity import directory as directory_module
from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle as lc
from authz.identity.agents.errors import Conflict, Invalid
from authz.storage.models import AgentCredential
from authz.storage.sql import SqlStore
from tests.authz.conftest import AS
from tests.authz.identity.agents.conftest import deps, key_token, secret_token

pytestmark = pytest.mark.anyio


def _agent_with_secret(server: AS) -> tuple[str, str, str]:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    issued = creds.issue_credential(d, agent.id, kind="secret", actor="t")
    assert issued.secret
    return agent.id, issued.credential.id, issued.secret


def _expire_in_db(server: AS, cred_id: str) -> None:
    store = server.ctx.store
    assert isinstance(store, SqlStore)
    with store.sessions.begin() as s:
        s.execute(update(AgentCredential).where(AgentCredential.id == cred_id).values(expires_at=int(time.time()) - 1))


async def test_revoked_secret_stops_at_once(server: AS) -> None:
    agent_id, cred_id, secret = _agent_with_secret(server)
    assert (await secret_token(server, agent_id, secret)).status_code == 200
    creds.revoke_credential(deps(server), agent_id, cred_id, actor="t")
    assert (await secret_token(server, agent_id, secret)).status_code == 401
    with pytest.raises(Conflict):
        creds.revoke_credential(deps(server), agent_id, cred_id, actor="t")


async def test_rotation_overlap_both_work_then_old_stops(server: AS) -> None:
    agent_id, cred_id, old_secret = _agent_with_secret(server)
    assert (await secret_token(server, agent_id, old_secret)).status_code == 200  # cached in the directory
    new, old = creds.rotate_credential(deps(server), agent_id, cred_id, overlap=3600, actor="t")
    assert new.secret and new.credential.kind == "secret"
    assert old.expires_at is not None and old.expires_at >= int(time.time()) + 3599
    assert (await secret_token(server, agent_id, old_secret)).status_code == 200
    assert (await secret_token(server, agent_id, new.secret)).status_code == 200
    with pytest.raises(Conflict):  # an old credential is rotated once
        creds.rotate_credential(deps(server), agent_id, cred_id, actor="t")

    _expire_in_db(server, cred_id)  # the window is over (no sleeping); replicas learn it from the feed
    server.ctx.directory.invalidate("client", agent_id)
    assert (await secret_token(server, agent_id, old_secret)).status_code == 401
    assert (await secret_token(server, agent_id, new.secret)).status_code == 200
    listed = {c.id: creds.state(c, time.time()) for c in creds.list_credentials(deps(server), agent_id)}
    assert listed == {cred_id: "expired", new.credential.id: "active"}


async def test_cached_client_stops_accepting_old_credential_when_window_ends(
    server: AS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No change event arrives when an overlap ends: the directory's entry must expire by itself."""
    agent_id, cred_id, old_secret = _agent_with_secret(server)
    new, _ = creds.rotate_credential(deps(server), agent_id, cred_id, overlap=600, actor="t")
    assert new.secret
    assert (await secret_token(server, agent_id, old_secret)).status_code == 200  # cached, valid until +600 s
    later = time.time() + 601
    monkeypatch.setattr(directory_module, "time", types.SimpleNamespace(time=lambda: later))
    assert (await secret_token(server, agent_id, old_secret)).status_code == 401
    assert (await secret_token(server, agent_id, new.secret)).status_code == 200


async def test_rotation_with_zero_overlap_ends_the_old_credential_at_once(server: AS) -> None:
    agent_id, cred_id, old_secret = _agent_with_secret(server)
    new, _ = creds.rotate_credential(deps(server), agent_id, cred_id, overlap=0, actor="t")
    assert new.secret
    assert (await secret_token(server, agent_id, old_secret)).status_code == 401
    assert (await secret_token(server, agent_id, new.secret)).status_code == 200


async def test_public_key_authenticates_with_private_key_jwt(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    key = ECKey.generate_key("P-256", auto_kid=True)
    cred = creds.issue_credential(d, agent.id, kind="public_key", jwk=key.as_dict(private=False), actor="t")
    assert cred.secret is None and cred.credential.public_jwk is not None
    assert cred.credential.public_jwk["kid"] == key.kid
    r = await key_token(server, agent.id, key)
    assert r.status_code == 200, r.text
    claims = await server.introspect(r.json()["access_token"])
    assert claims["active"] is True and claims["agent"] == agent.id
    # a secret-style attempt is refused: the agent has no secret
    assert (await secret_token(server, agent.id, "x")).status_code == 401

    # rotate to a new key: both sign inside the window; revoking the new one leaves the old one only
    key2 = ECKey.generate_key("P-256", auto_kid=True)
    new, _ = creds.rotate_credential(d, agent.id, cred.credential.id, jwk=key2.as_dict(private=False), actor="t")
    assert (await key_token(server, agent.id, key)).status_code == 200
    assert (await key_token(server, agent.id, key2)).status_code == 200
    creds.revoke_credential(d, agent.id, new.credential.id, actor="t")
    assert (await key_token(server, agent.id, key2)).status_code == 401
    creds.revoke_credential(d, agent.id, cred.credential.id, actor="t")
    assert (await key_token(server, agent.id, key)).status_code == 401


async def test_kid_defaults_to_the_thumbprint(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    key = ECKey.generate_key("P-256")
    public = key.as_dict(private=False)
    public.pop("kid", None)
    issued = creds.issue_credential(d, agent.id, kind="public_key", jwk=public, actor="t")
    assert issued.credential.public_jwk is not None
    assert issued.credential.public_jwk["kid"] == key.thumbprint()
    with pytest.raises(Invalid):  # the same kid twice among live keys is ambiguous
        creds.issue_credential(d, agent.id, kind="public_key", jwk=public, actor="t")


def _bad_keys() -> dict[str, Any]:
    ec = ECKey.generate_key("P-256", auto_kid=True)
    return {
        "private EC key": ec.as_dict(private=True),
        "symmetric key": OctKey.generate_key(256).as_dict(),
        "small RSA key": RSAKey.generate_key(1024).as_dict(private=False),
        "not a key": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"},
        "HMAC alg": {**ec.as_dict(private=False), "alg": "HS256"},
        "not an object": "key",
    }


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
async def test_bad_keys_and_urls_are_refused_and_nothing_is_written(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    for name, jwk in _bad_keys().items():
        with pytest.raises(Invalid) as info:
            creds.issue_credential(d, agent.id, kind="public_key", jwk=jwk, actor="t")
        assert info.value.errors[0][0] == "jwk", name
    for url in ("http://keys.example.com/jwks.json", "ftp://x/y", "https://user@x.example/jwks", "not a url"):
        with pytest.raises(Invalid):
            creds.issue_credential(d, agent.id, kind="jwks_uri", jwks_uri=url, actor="t")
    with pytest.raises(Invalid):
        creds.issue_credential(d, agent.id, kind="password", actor="t")
    assert server.ctx.store.list_credentials(agent.id) == []
    cred = creds.issue_credential(d, agent.id, kind="secret", actor="t").credential
    for overlap in (-1, 31 * 86400):
        with pytest.raises(Invalid):
            creds.rotate_credential(d, agent.id, cred.id, overlap=overlap, actor="t")
    assert [(c.id, c.expires_at) for c in server.ctx.store.list_credentials(agent.id)] == [(cred.id, None)]


async def test_jwks_uri_credential_is_the_clients_jwks_uri(server: AS) -> None:
    d = deps(server)
    agent = lc.create_agent(d, name="bot", actor="t")
    creds.issue_credential(d, agent.id, kind="jwks_uri", jwks_uri="https://keys.example.com/jwks.json", actor="t")
    client = server.ctx.directory.client(agent.id)
    assert client is not None
    assert client.jwks_uri == "https://keys.example.com/jwks.json" and client.jwks is None
    assert client.check_endpoint_auth_method("private_key_jwt", "token")
    assert not client.check_endpoint_auth_method("client_secret_basic", "token")
    key = ECKey.generate_key("P-256", auto_kid=True)
    creds.issue_credential(d, agent.id, kind="public_key", jwk=key.as_dict(private=False), actor="t")
    client = server.ctx.directory.client(agent.id)
    assert client is not None and client.jwks is not None and client.jwks_uri is None  # inline keys win
