"""Replica-bound DPoP nonces (``dpop_replica_nonces``): each replica's memory is its whole replay cache.

RFC 9449 §11.1: "the server MUST only accept the proof once within the window" — across replicas.
With replica-bound nonces a proof is acceptable at the replica whose nonce it carries only, so the
guarantee holds with no shared store; these tests show a second replica refusing what the first accepted.
"""

from __future__ import annotations

import httpx2
import pytest

from authz.app import create_app
from dpop import DpopKey, NonceIssuer
from tests.authz.conftest import ISSUER, RESOURCE, ASFactory
from tests.authz.oauth.test_dpop_token import cc, error_of, proof

pytestmark = pytest.mark.anyio


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_a_proof_is_accepted_once_and_by_one_replica_only(as_factory: ASFactory) -> None:
    a = await as_factory(dev_mode=True, dpop_replica_nonces=True)
    reg = a.machine_client()
    key = DpopKey.generate()
    asked = await cc(a, reg, proof(key))
    assert error_of(asked) == "use_dpop_nonce"  # implies dpop_nonce
    nonce = asked.headers["dpop-nonce"]
    headers = proof(key, nonce=nonce)
    ok = await cc(a, reg, headers)
    assert ok.status_code == 200 and ok.json()["token_type"] == "DPoP"
    assert error_of(await cc(a, reg, headers)) == "invalid_dpop_proof"  # a replay at the same replica

    app_b = create_app(a.settings)  # another replica: same database and key-encryption key, own memory
    try:
        async with app_b.router.lifespan_context(app_b):
            transport = httpx2.ASGITransport(app=app_b)
            async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http_b:
                data = {"grant_type": "client_credentials", "resource": RESOURCE}
                auth = (reg.client_id, str(reg.client_secret))
                replayed = await http_b.post("/token", data=data, auth=auth, headers=headers)
                assert error_of(replayed) == "use_dpop_nonce"  # A's nonce means nothing to B
                b_nonce = replayed.headers["dpop-nonce"]
                assert b_nonce != nonce
                fresh = await http_b.post("/token", data=data, auth=auth, headers=proof(key, nonce=b_nonce))
                assert fresh.status_code == 200, fresh.text
                assert error_of(await cc(a, reg, proof(key, nonce=b_nonce))) == "use_dpop_nonce"  # and vice versa
    finally:
        app_b.state.ctx.store.engine.dispose()


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_a_full_cache_voids_every_nonce_and_never_forgets_an_acceptable_proof(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, dpop_replica_nonces=True)
    replica = authz.app.state.server.dpop.replica
    replica._max = 2
    reg = authz.machine_client()
    key = DpopKey.generate()
    nonce = (await cc(authz, reg, proof(key))).headers["dpop-nonce"]
    first = proof(key, nonce=nonce)
    assert (await cc(authz, reg, first)).status_code == 200
    assert (await cc(authz, reg, proof(key, nonce=nonce))).status_code == 200
    full = await cc(authz, reg, proof(key, nonce=nonce))
    assert error_of(full) == "use_dpop_nonce"  # the cache was full: a new replica id, a new nonce
    assert full.headers["dpop-nonce"] != nonce
    assert error_of(await cc(authz, reg, first)) == "use_dpop_nonce"  # the forgotten proof stays refused
    ok = await cc(authz, reg, proof(key, nonce=full.headers["dpop-nonce"]))
    assert ok.status_code == 200


def test_replica_bound_nonces_are_refused_by_any_other_issuer() -> None:
    key = b"k" * 32
    a, b, shared = NonceIssuer(key, replica=True), NonceIssuer(key, replica=True), NonceIssuer(key)
    nonce = a.issue()
    assert a.valid(nonce) and not b.valid(nonce) and not shared.valid(nonce)
    assert not a.valid(shared.issue())
    a.new_replica_id()
    assert not a.valid(nonce) and a.valid(a.issue())
