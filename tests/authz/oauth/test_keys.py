"""Signing keys: publication before use, retirement after the last token, encryption at rest."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from authz.storage.models import SigningKey
from tests.authz.conftest import AS
from tests.authz.oauth.endpoints.test_token import header_of

pytestmark = pytest.mark.anyio


async def _kids(authz: AS) -> set[str]:
    return {k["kid"] for k in (await authz.http.get("/jwks")).json()["keys"]}


@pytest.mark.requirement("rfc7517:published-before-signing")
async def test_rotation_signs_with_the_key_that_was_already_published(authz: AS) -> None:
    reg = authz.machine_client()
    before = await _kids(authz)
    old_token = (await authz.client_credentials(reg)).json()["access_token"]
    old_kid = str(header_of(old_token)["kid"])
    new_kid, next_kid = authz.ctx.keys.rotate(retire_after=600)
    assert new_kid in before and new_kid != old_kid
    new_token = (await authz.client_credentials(reg)).json()["access_token"]
    assert header_of(new_token)["kid"] == new_kid
    after = await _kids(authz)
    assert {old_kid, new_kid, next_kid} <= after
    assert (await authz.introspect(old_token))["active"] is True
    assert (await authz.introspect(new_token))["active"] is True


async def test_retired_keys_leave_the_jwks_after_their_publication_window(authz: AS) -> None:
    reg = authz.machine_client()
    old_token = (await authz.client_credentials(reg)).json()["access_token"]
    old_kid = str(header_of(old_token)["kid"])
    authz.ctx.keys.rotate(retire_after=600)
    with authz.ctx.store.sessions.begin() as s:  # type: ignore[attr-defined]
        s.execute(update(SigningKey).where(SigningKey.kid == old_kid).values(publish_until=int(time.time()) - 1))
    authz.ctx.keys.reload()
    assert old_kid not in await _kids(authz)
    assert (await authz.introspect(old_token))["active"] is False


async def test_private_keys_are_encrypted_at_rest(authz: AS) -> None:
    for row in authz.ctx.store.list_keys():
        assert b"PRIVATE KEY" not in row.private_encrypted
        assert "d" not in row.public_jwk


async def test_a_replica_picks_up_a_rotation_through_the_change_feed(authz: AS, as_factory: object) -> None:
    from authz.app import build_context
    from authz.sync import ChangeWatcher

    replica = build_context(authz.settings)
    replica.keys.ensure()
    watcher = ChangeWatcher(replica)
    watcher.poll()
    active_before = replica.keys.view.signing_kid
    new_kid, _ = authz.ctx.keys.rotate(retire_after=600)
    watcher.poll()
    assert replica.keys.view.signing_kid == new_kid != active_before
