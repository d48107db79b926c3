"""DPoP at the authorization server (RFC 9449 §5, §6, §8, §10): every grant, bound and unbound."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import pytest

from authz.app import create_app
from authz.core.settings import Settings
from dpop import DpopKey
from tests.authz.conftest import AS, ISSUER, REDIRECT, RESOURCE, ASFactory, pkce_pair, redirect_params
from tests.authz.oauth.grants.test_jwt_bearer import JWT_BEARER, id_jag, trust_idp
from tests.authz.oauth.grants.test_jwt_bearer import client as idjag_client
from tests.authz.oauth.grants.test_token_exchange import AT, TE, agent, claims_of

pytestmark = pytest.mark.anyio

TOKEN_URL = ISSUER + "/token"


def proof(key: DpopKey, **kw: Any) -> dict[str, str]:
    return {"DPoP": key.proof("POST", TOKEN_URL, **kw)}


async def cc(authz: AS, reg: Any, headers: dict[str, str] | None = None, **form: str) -> httpx2.Response:
    data = {"grant_type": "client_credentials", "resource": RESOURCE, **form}
    return await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret), headers=headers)


def error_of(r: httpx2.Response) -> str:
    assert r.status_code == 400, r.text
    return str(r.json()["error"])


# -- metadata ------------------------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:as-metadata")
async def test_metadata_lists_asymmetric_dpop_algorithms_only(authz: AS) -> None:
    doc = (await authz.http.get("/.well-known/oauth-authorization-server")).json()
    algs = doc["dpop_signing_alg_values_supported"]
    assert "ES256" in algs and "EdDSA" in algs
    assert not any(a == "none" or a.startswith("HS") for a in algs)


def test_settings_refuse_symmetric_dpop_algorithms(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="dpop_signing_alg_values"):
        Settings(data_dir=tmp_path, dpop_signing_alg_values=["HS256"])  # type: ignore[list-item]


# -- client_credentials, bound and not ------------------------------------------------------------
@pytest.mark.requirement("rfc9449:token-type-dpop")
async def test_a_proof_gets_a_dpop_token_with_cnf_jkt_in_the_jwt_and_introspection(authz: AS) -> None:
    reg = authz.machine_client()
    key = DpopKey.generate()
    r = await cc(authz, reg, proof(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    info = await authz.introspect(body["access_token"])
    assert info["active"] is True and info["token_type"] == "DPoP" and info["cnf"] == {"jkt": key.jkt}


async def test_without_a_proof_tokens_stay_bearer(authz: AS) -> None:
    reg = authz.machine_client()
    body = (await cc(authz, reg)).json()
    assert body["token_type"] == "Bearer" and "cnf" not in claims_of(body["access_token"])
    info = await authz.introspect(body["access_token"])
    assert info["token_type"] == "Bearer" and "cnf" not in info


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
async def test_every_advertised_algorithm_works(authz: AS, alg: str) -> None:
    reg = authz.machine_client()
    key = DpopKey.generate(alg)
    r = await cc(authz, reg, proof(key))
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["cnf"]["jkt"] == key.jkt


# -- RFC 9449 §4.3 at the token endpoint -----------------------------------------------------------
def _forge(key: DpopKey, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    """A proof signed by ``key`` with a replaced header and/or claims (to break one check at a time)."""
    good = key.proof("POST", TOKEN_URL)
    h64, c64, _ = good.split(".")
    head = json.loads(base64.urlsafe_b64decode(h64 + "=="))
    body = json.loads(base64.urlsafe_b64decode(c64 + "=="))
    head.update(header or {})
    for k, v in (claims or {}).items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v

    def enc(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    signing_input = enc(head) + "." + enc(body)
    return signing_input + "." + base64.urlsafe_b64encode(key._sign(signing_input.encode())).rstrip(b"=").decode()


def _cases() -> dict[str, Any]:
    key = DpopKey.generate()
    other = DpopKey.generate()
    now = int(time.time())
    private = {**key.public_jwk, "d": key.private_jwk()["d"]}
    good = key.proof("POST", TOKEN_URL)
    return {
        "2-not-a-jwt": "not-a-jwt",
        "2-two-parts": ".".join(good.split(".")[:2]),
        "3-no-jti": _forge(key, claims={"jti": None}),
        "3-no-htm": _forge(key, claims={"htm": None}),
        "3-no-htu": _forge(key, claims={"htu": None}),
        "3-no-iat": _forge(key, claims={"iat": None}),
        "4-typ-jwt": _forge(key, header={"typ": "JWT"}),
        "5-alg-none": _forge(key, header={"alg": "none"}),
        "5-alg-hs256": _forge(key, header={"alg": "HS256"}),
        "6-bad-signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "6-other-key-in-header": _forge(key, header={"jwk": other.public_jwk}),
        "7-private-jwk": _forge(key, header={"jwk": private}),
        "8-htm-get": key.proof("GET", TOKEN_URL),
        "9-htu-other": key.proof("POST", "http://127.0.0.1:9100/authorize"),
        "9-htu-other-host": key.proof("POST", "https://evil.example/token"),
        "9-htu-with-query": _forge(key, claims={"htu": TOKEN_URL + "?x=1"}),
        "11-iat-old": key.proof("POST", TOKEN_URL, iat=now - 301),
        "11-iat-future": key.proof("POST", TOKEN_URL, iat=now + 301),
    }


CASES = sorted(_cases())  # the names; each proof is made when its test runs (iat is time-sensitive)


@pytest.mark.requirement("rfc9449:proof-checks")
@pytest.mark.parametrize("case", CASES)
async def test_each_proof_check_refuses_with_invalid_dpop_proof(authz: AS, case: str) -> None:
    reg = authz.machine_client()
    r = await cc(authz, reg, {"DPoP": _cases()[case]})
    assert error_of(r) == "invalid_dpop_proof", case
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.requirement("rfc9449:proof-checks")
async def test_two_dpop_headers_are_refused(authz: AS) -> None:
    reg = authz.machine_client()
    key = DpopKey.generate()
    headers = [("DPoP", key.proof("POST", TOKEN_URL)), ("DPoP", key.proof("POST", TOKEN_URL))]
    data = {"grant_type": "client_credentials", "resource": RESOURCE}
    assert reg.client_secret is not None
    r = await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret), headers=headers)
    assert error_of(r) == "invalid_dpop_proof"


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_a_replayed_proof_is_refused(authz: AS) -> None:
    reg = authz.machine_client()
    headers = proof(DpopKey.generate())
    assert (await cc(authz, reg, headers)).status_code == 200
    assert error_of(await cc(authz, reg, headers)) == "invalid_dpop_proof"


async def test_a_refused_proof_is_audited_without_the_proof(authz: AS) -> None:
    reg = authz.machine_client()
    headers = proof(DpopKey.generate())
    assert (await cc(authz, reg, headers)).status_code == 200
    assert error_of(await cc(authz, reg, headers)) == "invalid_dpop_proof"
    authz.ctx.audit.flush()
    events = [e for e in authz.ctx.store.list_audit(0, 1000) if e.event == "token.refused"]
    assert events and events[-1].reason == "invalid_dpop_proof" and events[-1].client_id == reg.client_id
    dump = json.dumps([e.detail for e in authz.ctx.store.list_audit(0, 1000)])
    assert headers["DPoP"] not in dump and headers["DPoP"].split(".")[2] not in dump


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_a_failed_proof_check_does_not_burn_the_jti(authz: AS) -> None:
    """The stateless checks run before the replay cache: only accepted proofs are remembered."""
    reg = authz.machine_client()
    key = DpopKey.generate()
    bad = key.proof("GET", TOKEN_URL, jti="same-jti")
    assert error_of(await cc(authz, reg, {"DPoP": bad})) == "invalid_dpop_proof"
    assert (await cc(authz, reg, proof(key, jti="same-jti"))).status_code == 200


# -- dpop_bound_access_tokens -----------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:dpop-bound-client")
async def test_a_dpop_bound_client_must_present_a_proof(authz: AS) -> None:
    reg = authz.machine_client(extra={"dpop_bound_access_tokens": True})
    assert error_of(await cc(authz, reg)) == "invalid_dpop_proof"
    r = await cc(authz, reg, proof(DpopKey.generate()))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"


async def test_dynamic_registration_records_dpop_bound_access_tokens(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, dynamic_registration=True)
    meta = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "dpop_bound_access_tokens": True}
    r = await authz.http.post("/register", json=meta)
    assert r.status_code == 201, r.text
    assert r.json()["dpop_bound_access_tokens"] is True
    client = authz.ctx.directory.client(r.json()["client_id"])
    assert client is not None and client.dpop_bound_access_tokens is True
    bad = await authz.http.post("/register", json={**meta, "dpop_bound_access_tokens": "yes"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"


# -- authorization code: dpop_jkt, and refresh tokens of public clients ------------------------------
async def _code(authz: AS, **params: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    r = await authz.authorize("public-app", code_challenge=challenge, code_challenge_method="S256", **params)
    assert r.status_code == 302, r.text
    return redirect_params(r)["code"], verifier


async def _redeem(authz: AS, code: str, verifier: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": "public-app",
        "resource": RESOURCE,
    }
    return await authz.http.post("/token", data=data, headers=headers)


async def _refresh(authz: AS, refresh: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "public-app"}
    return await authz.http.post("/token", data=data, headers=headers)


@pytest.mark.requirement("rfc9449:dpop-jkt")
async def test_dpop_jkt_binds_the_code_to_the_key(authz: AS) -> None:
    authz.public_client()
    key, other = DpopKey.generate(), DpopKey.generate()
    code, verifier = await _code(authz, dpop_jkt=key.jkt)
    assert error_of(await _redeem(authz, code, verifier, proof(other))) == "invalid_grant"
    code, verifier = await _code(authz, dpop_jkt=key.jkt)
    assert error_of(await _redeem(authz, code, verifier)) == "invalid_dpop_proof"
    code, verifier = await _code(authz, dpop_jkt=key.jkt)
    r = await _redeem(authz, code, verifier, proof(key))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"
    assert claims_of(r.json()["access_token"])["cnf"]["jkt"] == key.jkt


async def test_a_malformed_dpop_jkt_is_invalid_request(authz: AS) -> None:
    authz.public_client()
    _, challenge = pkce_pair()
    r = await authz.authorize("public-app", code_challenge=challenge, code_challenge_method="S256", dpop_jkt="x")
    assert r.status_code == 302 and redirect_params(r)["error"] == "invalid_request"


@pytest.mark.requirement("rfc9449:refresh-binding")
async def test_a_public_clients_refresh_token_is_bound_to_its_key(authz: AS) -> None:
    authz.public_client()
    key, other = DpopKey.generate(), DpopKey.generate()
    code, verifier = await _code(authz)
    first = (await _redeem(authz, code, verifier, proof(key))).json()
    assert first["token_type"] == "DPoP"
    refresh = first["refresh_token"]
    assert error_of(await _refresh(authz, refresh)) == "invalid_dpop_proof"
    code2, verifier2 = await _code(authz)
    refresh2 = (await _redeem(authz, code2, verifier2, proof(key))).json()["refresh_token"]
    assert error_of(await _refresh(authz, refresh2, proof(other))) == "invalid_grant"
    code3, verifier3 = await _code(authz)
    refresh3 = (await _redeem(authz, code3, verifier3, proof(key))).json()["refresh_token"]
    r = await _refresh(authz, refresh3, proof(key))
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"
    successor = r.json()["refresh_token"]
    assert error_of(await _refresh(authz, successor, proof(other))) == "invalid_grant"


async def test_bearer_code_flow_and_refresh_still_work(authz: AS) -> None:
    authz.public_client()
    body, _ = await authz.code_flow("public-app")
    assert body["token_type"] == "Bearer"
    r = await _refresh(authz, body["refresh_token"])
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


async def test_a_confidential_clients_refresh_token_is_not_bound(authz: AS) -> None:
    reg = authz.client(client_id="web-app", redirect_uris=[REDIRECT])
    assert reg.client_secret is not None
    verifier, challenge = pkce_pair()
    r = await authz.authorize("web-app", code_challenge=challenge, code_challenge_method="S256")
    data = {
        "grant_type": "authorization_code",
        "code": redirect_params(r)["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    auth = (reg.client_id, reg.client_secret)
    first = (await authz.http.post("/token", data=data, auth=auth, headers=proof(DpopKey.generate()))).json()
    assert first["token_type"] == "DPoP"
    again = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    r2 = await authz.http.post("/token", data=again, auth=auth)
    assert r2.status_code == 200 and r2.json()["token_type"] == "Bearer"


# -- token exchange and jwt-bearer --------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:exchange-actor-key")
async def test_token_exchange_binds_to_the_actors_proof_key(authz: AS) -> None:
    authz.public_client()
    user = (await authz.code_flow("public-app"))[0]["access_token"]
    reg = agent(authz)
    key = DpopKey.generate()
    data = {"grant_type": TE, "subject_token": user, "subject_token_type": AT, "resource": RESOURCE}
    auth = (reg.client_id, str(reg.client_secret))
    r = await authz.http.post("/token", data=data, auth=auth, headers=proof(key))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP" and claims_of(r.json()["access_token"])["cnf"]["jkt"] == key.jkt
    plain = await authz.http.post("/token", data=data, auth=auth)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer"


@pytest.mark.requirement("rfc9449:exchange-actor-key")
async def test_a_bound_actor_token_needs_a_proof_by_its_key(authz: AS) -> None:
    authz.public_client()
    user = (await authz.code_flow("public-app"))[0]["access_token"]
    reg = agent(authz)
    key, other = DpopKey.generate(), DpopKey.generate()
    actor = (await cc(authz, reg, proof(key))).json()["access_token"]
    data = {
        "grant_type": TE,
        "subject_token": user,
        "subject_token_type": AT,
        "actor_token": actor,
        "actor_token_type": AT,
        "resource": RESOURCE,
    }
    auth = (reg.client_id, str(reg.client_secret))
    assert error_of(await authz.http.post("/token", data=data, auth=auth)) == "invalid_grant"
    assert error_of(await authz.http.post("/token", data=data, auth=auth, headers=proof(other))) == "invalid_grant"
    r = await authz.http.post("/token", data=data, auth=auth, headers=proof(key))
    assert r.status_code == 200 and claims_of(r.json()["access_token"])["cnf"]["jkt"] == key.jkt


async def test_jwt_bearer_with_and_without_dpop(authz: AS) -> None:
    from joserfc.jwk import ECKey

    idp = ECKey.generate_key("P-256", auto_kid=True)
    trust_idp(authz, idp)
    reg = idjag_client(authz)
    auth = (reg.client_id, str(reg.client_secret))
    key = DpopKey.generate()
    bound = await authz.http.post(
        "/token", data={"grant_type": JWT_BEARER, "assertion": id_jag(idp)}, auth=auth, headers=proof(key)
    )
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP" and claims_of(bound.json()["access_token"])["cnf"]["jkt"] == key.jkt
    plain = await authz.http.post("/token", data={"grant_type": JWT_BEARER, "assertion": id_jag(idp)}, auth=auth)
    assert plain.status_code == 200 and plain.json()["token_type"] == "Bearer"


# -- server nonces (RFC 9449 §8) ------------------------------------------------------------------------
@pytest.mark.requirement("rfc9449:as-nonce")
async def test_nonce_required_then_honoured(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, dpop_nonce=True)
    reg = authz.machine_client()
    key = DpopKey.generate()
    first = await cc(authz, reg, proof(key))
    assert error_of(first) == "use_dpop_nonce"
    nonce = first.headers["dpop-nonce"]
    assert error_of(await cc(authz, reg, proof(key, nonce="forged-" + nonce[7:]))) == "use_dpop_nonce"
    ok = await cc(authz, reg, proof(key, nonce=nonce))
    assert ok.status_code == 200 and ok.json()["token_type"] == "DPoP"
    assert ok.headers["dpop-nonce"]  # §8.2: the next nonce to use


@pytest.mark.requirement("rfc9449:as-nonce")
async def test_an_expired_nonce_is_answered_with_a_fresh_one(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, dpop_nonce=True, dpop_nonce_ttl=30)
    nonces = authz.app.state.server.dpop.nonces
    clock = [time.time() - 120]
    nonces._clock = lambda: clock[0]
    old = nonces.issue()
    clock[0] = time.time()
    reg = authz.machine_client()
    key = DpopKey.generate()
    r = await cc(authz, reg, proof(key, nonce=old))
    assert error_of(r) == "use_dpop_nonce"
    fresh = r.headers["dpop-nonce"]
    assert fresh != old
    assert (await cc(authz, reg, proof(key, nonce=fresh))).status_code == 200


# -- replicas share the replay cache ---------------------------------------------------------------------
async def _two_replicas_refuse_a_replay(as_factory: ASFactory, **settings: Any) -> None:
    """Replica A accepts a proof; replica B (its own app, caches and connections; the same database,
    Redis and key-encryption key) refuses the same proof."""
    a = await as_factory(dev_mode=True, **settings)
    reg = a.machine_client()
    app_b = create_app(a.settings)
    try:
        await _replay_across(a, app_b, reg)
    finally:
        app_b.state.ctx.store.engine.dispose()


async def _replay_across(a: AS, app_b: Any, reg: Any) -> None:
    async with app_b.router.lifespan_context(app_b):
        transport = httpx2.ASGITransport(app=app_b)
        async with httpx2.AsyncClient(transport=transport, base_url=ISSUER) as http_b:
            headers = proof(DpopKey.generate())
            assert (await cc(a, reg, headers)).status_code == 200
            data = {"grant_type": "client_credentials", "resource": RESOURCE}
            auth = (reg.client_id, str(reg.client_secret))
            replayed = await http_b.post("/token", data=data, auth=auth, headers=headers)
            assert error_of(replayed) == "invalid_dpop_proof"
            fresh = await http_b.post("/token", data=data, auth=auth, headers=proof(DpopKey.generate()))
            assert fresh.status_code == 200


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_two_replicas_share_the_sql_replay_cache(as_factory: ASFactory) -> None:
    await _two_replicas_refuse_a_replay(as_factory)


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_two_replicas_share_the_postgres_replay_cache(postgres_url: str, as_factory: ASFactory) -> None:
    await _two_replicas_refuse_a_replay(as_factory, database_url=postgres_url)


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_two_replicas_share_the_redis_replay_cache(redis_url: str, as_factory: ASFactory) -> None:
    await _two_replicas_refuse_a_replay(as_factory, redis_url=redis_url)
