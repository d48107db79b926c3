"""RFC 8693 token exchange: the exchange matrix of our profile (docs/token-exchange.md)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from authz.identity.registry import Registered, register_resource
from authz.oauth.tokens import TokenRequest
from authz.oauth.trust import TrustStore, register_issuer
from tests.authz.conftest import AS, ISSUER, RESOURCE, ASFactory

pytestmark = pytest.mark.anyio

TE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
THIRD = "http://127.0.0.1:9400/mcp"
FOREIGN = "https://idp.example.com"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def agent(authz: AS, client_id: str = "agent-1", **kwargs: Any) -> Registered:
    kwargs.setdefault("grant_types", ["client_credentials", TE])
    return authz.machine_client(client_id, **kwargs)


async def exchange(
    authz: AS, reg: Registered, subject: str, *, subject_type: str = AT, resource: str | None = RESOURCE, **form: str
) -> httpx2.Response:
    data = {"grant_type": TE, "subject_token": subject, "subject_token_type": subject_type, **form}
    if resource is not None:
        data["resource"] = resource
    assert reg.client_secret is not None
    return await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret))


async def user_token(authz: AS, scope: str = "tools:read tools:write") -> str:
    authz.public_client()
    body, _ = await authz.code_flow("public-app", scope=scope)
    token: str = body["access_token"]
    return token


def mint(authz: AS, *, subject: str = "user-x", client_id: str = "public-app", lifetime: int = 300, **kw: Any) -> str:
    """One of our access tokens, minted directly (for claims no grant sets, like may_act)."""
    if authz.ctx.store.get_client(client_id) is None:
        authz.public_client(client_id)
    now = kw.pop("now", None)
    req = TokenRequest(
        client_id=client_id,
        subject=subject,
        resource=kw.pop("resource", RESOURCE),
        scope=kw.pop("scope", "tools:read tools:write"),
        lifetime=lifetime,
        act=kw.pop("act", None),
        extra=kw,
    )
    token, _ = authz.ctx.issuer.access_token(req, now=now)
    return token


def error_of(r: httpx2.Response) -> str:
    assert r.status_code in (400, 401), r.text
    return str(r.json()["error"])


# -- the user's token, exchanged by an agent ---------------------------------------------------
async def test_user_token_exchanged_by_an_agent_names_the_user_as_subject_and_the_agent_as_actor(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    r = await exchange(authz, reg, user, scope="tools:read")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["issued_token_type"] == AT and body["token_type"] == "Bearer"
    assert body["scope"] == "tools:read" and 0 < body["expires_in"] <= 300
    assert "refresh_token" not in body
    claims, before = claims_of(body["access_token"]), claims_of(user)
    assert claims["sub"] == before["sub"] and claims["client_id"] == "agent-1" and claims["aud"] == RESOURCE
    assert claims["act"] == {"sub": "agent-1", "client_id": "agent-1"}
    assert claims["sid"] == before["sid"]  # it dies with the user's grant


async def test_exchange_for_another_resource_binds_the_new_audience(authz: AS) -> None:
    ctx = authz.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, THIRD, ["tools:read", "extra"], "third")
    user = await user_token(authz)
    r = await exchange(authz, agent(authz), user, resource=THIRD)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["aud"] == THIRD and claims["scope"] == "tools:read"  # the subject never held "extra"
    assert claims["sub"] == claims_of(user)["sub"]


async def test_agents_own_token_as_subject_has_no_act(authz: AS) -> None:
    reg = agent(authz)
    own = (await authz.client_credentials(reg, scope="tools:read")).json()["access_token"]
    r = await exchange(authz, reg, own)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == "agent-1" and "act" not in claims and claims["scope"] == "tools:read"


async def test_our_token_is_accepted_as_a_jwt_subject_token_too(authz: AS) -> None:
    user = await user_token(authz)
    r = await exchange(authz, agent(authz), user, subject_type=JWT_TYPE)
    assert r.status_code == 200, r.text


# -- delegation chains --------------------------------------------------------------------------
async def test_actor_token_builds_a_nested_act_chain(authz: AS) -> None:
    user = await user_token(authz)
    first, second = agent(authz, "agent-1"), agent(authz, "agent-2")
    hop1 = (await exchange(authz, first, user)).json()["access_token"]
    actor = (await authz.client_credentials(second, scope="tools:read")).json()["access_token"]
    r = await exchange(authz, second, hop1, actor_token=actor, actor_token_type=AT, scope="tools:read")
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == claims_of(user)["sub"] and claims["client_id"] == "agent-2"
    assert claims["act"] == {
        "sub": "agent-2",
        "client_id": "agent-2",
        "act": {"sub": "agent-1", "client_id": "agent-1"},
    }


async def test_the_client_is_the_actor_when_no_actor_token_is_given(authz: AS) -> None:
    user = await user_token(authz)
    hop1 = (await exchange(authz, agent(authz, "agent-1"), user)).json()["access_token"]
    r = await exchange(authz, agent(authz, "agent-2"), hop1)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["act"]["act"] == {"sub": "agent-1", "client_id": "agent-1"}


async def test_an_actor_narrowing_its_own_delegated_token_adds_no_hop(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    hop1 = (await exchange(authz, reg, user)).json()["access_token"]
    r = await exchange(authz, reg, hop1, scope="tools:read")
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["act"] == {"sub": "agent-1", "client_id": "agent-1"}


async def test_act_chain_depth_is_limited(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, exchange_max_act_depth=1)
    user = await user_token(authz)
    hop1 = (await exchange(authz, agent(authz, "agent-1"), user)).json()["access_token"]
    r = await exchange(authz, agent(authz, "agent-2"), hop1)
    assert error_of(r) == "invalid_request"


async def test_may_act_allows_the_named_actor(authz: AS) -> None:
    subject = mint(authz, may_act={"sub": "agent-1"})
    r = await exchange(authz, agent(authz, "agent-1"), subject)
    assert r.status_code == 200, r.text
    assert "may_act" not in claims_of(r.json()["access_token"])


async def test_may_act_refuses_another_actor(authz: AS) -> None:
    subject = mint(authz, may_act={"sub": "agent-1"})
    assert error_of(await exchange(authz, agent(authz, "agent-2"), subject)) == "invalid_grant"


async def test_may_act_checks_the_actor_tokens_principal_and_client(authz: AS) -> None:
    subject = mint(authz, may_act={"sub": "agent-2", "client_id": "agent-2"})
    caller, second = agent(authz, "agent-1"), agent(authz, "agent-2")
    actor = (await authz.client_credentials(second)).json()["access_token"]
    ok = await exchange(authz, caller, subject, actor_token=actor, actor_token_type=AT)
    assert ok.status_code == 200, ok.text
    wrong = mint(authz, may_act={"sub": "agent-2", "client_id": "someone-else"})
    r = await exchange(authz, caller, wrong, actor_token=actor, actor_token_type=AT)
    assert error_of(r) == "invalid_grant"


# -- scopes ------------------------------------------------------------------------------------
async def test_exchange_never_adds_a_scope(authz: AS) -> None:
    user = await user_token(authz, scope="tools:read")
    assert error_of(await exchange(authz, agent(authz), user, scope="tools:read tools:write")) == "invalid_scope"


async def test_exchange_narrows_to_the_requested_scopes(authz: AS) -> None:
    user = await user_token(authz)
    r = await exchange(authz, agent(authz), user, scope="tools:write")
    assert r.status_code == 200 and r.json()["scope"] == "tools:write"


async def test_the_clients_ceiling_applies(authz: AS) -> None:
    user = await user_token(authz)
    r = await exchange(authz, agent(authz, scope="tools:read"), user)
    assert r.status_code == 200 and r.json()["scope"] == "tools:read"


async def test_no_common_scope_at_the_target_is_invalid_scope(authz: AS) -> None:
    ctx = authz.ctx
    register_resource(ctx.store, ctx.store, ctx.keyring, THIRD, ["files:read"], "files only")
    user = await user_token(authz)
    assert error_of(await exchange(authz, agent(authz), user, resource=THIRD)) == "invalid_scope"


# -- targets -----------------------------------------------------------------------------------
async def test_unknown_resource_is_invalid_target(authz: AS) -> None:
    user = await user_token(authz)
    r = await exchange(authz, agent(authz), user, resource="http://127.0.0.1:9999/mcp")
    assert error_of(r) == "invalid_target"


async def test_missing_resource_is_invalid_target(authz: AS) -> None:
    user = await user_token(authz)
    assert error_of(await exchange(authz, agent(authz), user, resource=None)) == "invalid_target"


async def test_audience_must_name_the_resource(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    assert (await exchange(authz, reg, user, audience=RESOURCE)).status_code == 200
    assert error_of(await exchange(authz, reg, user, audience="http://elsewhere/mcp")) == "invalid_target"


# -- dead or foreign subjects ------------------------------------------------------------------
async def test_expired_subject_is_invalid_grant(authz: AS) -> None:
    subject = mint(authz, now=int(time.time()) - 1000, lifetime=300)
    assert error_of(await exchange(authz, agent(authz), subject)) == "invalid_grant"


async def test_revoked_subject_is_invalid_grant(authz: AS) -> None:
    user = await user_token(authz)
    claims = claims_of(user)
    authz.ctx.revocations.revoke("jti", claims["jti"], claims["exp"])
    assert error_of(await exchange(authz, agent(authz), user)) == "invalid_grant"


async def test_revoking_the_users_grant_kills_the_exchanged_token(authz: AS) -> None:
    user = await user_token(authz)
    new = (await exchange(authz, agent(authz), user)).json()["access_token"]
    assert (await authz.introspect(new))["active"] is True
    authz.ctx.revocations.revoke("grant", claims_of(user)["sid"], int(time.time()) + 600)
    assert (await authz.introspect(new))["active"] is False


async def test_subject_of_a_disabled_client_is_invalid_grant(authz: AS) -> None:
    user = await user_token(authz)
    authz.ctx.store.set_client_status("public-app", "disabled")
    authz.ctx.directory.invalidate("client", "public-app")
    assert error_of(await exchange(authz, agent(authz), user)) == "invalid_grant"


async def test_garbage_and_forged_subjects_are_invalid_grant(authz: AS) -> None:
    reg = agent(authz)
    assert error_of(await exchange(authz, reg, "not-a-token")) == "invalid_grant"
    user = await user_token(authz)
    head, payload, sig = user.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["scope"] = "tools:read tools:write admin"
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert error_of(await exchange(authz, reg, f"{head}.{body}.{sig}")) == "invalid_grant"


async def test_lifetime_never_exceeds_the_subjects_remaining_life(authz: AS) -> None:
    subject = mint(authz, lifetime=40)
    r = await exchange(authz, agent(authz), subject)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] <= 40
    assert claims_of(body["access_token"])["exp"] <= claims_of(subject)["exp"]


async def test_lifetime_cap_setting(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, exchange_token_ttl=60)
    r = await exchange(authz, agent(authz), await user_token(authz))
    assert r.status_code == 200 and r.json()["expires_in"] == 60


# -- trusted JWT issuers -----------------------------------------------------------------------
def foreign_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def trust(authz: AS, key: ECKey, issuer: str = FOREIGN, kind: str = "subject", **kw: Any) -> None:
    jwks = {"keys": [key.as_dict(private=False)]}
    register_issuer(authz.ctx.store, issuer, kind, jwks=jwks, **kw)  # type: ignore[arg-type]


def foreign_jwt(key: Any, alg: str = "ES256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": FOREIGN, "sub": "ext-user", "aud": ISSUER, "iat": now, "exp": now + 300, "scope": "tools:read"}
    body.update(claims)
    header = {"alg": alg, "typ": "JWT"}
    if isinstance(key, ECKey):
        header["kid"] = key.kid or ""
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])


async def test_subject_from_a_trusted_jwt_issuer(authz: AS) -> None:
    key = foreign_key()
    trust(authz, key)
    r = await exchange(authz, agent(authz), foreign_jwt(key), subject_type=JWT_TYPE)
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["sub"] == "ext-user" and claims["scope"] == "tools:read" and claims["iss"] == ISSUER
    assert claims["act"] == {"sub": "agent-1", "client_id": "agent-1"}


async def test_subject_from_an_untrusted_issuer_is_invalid_grant(authz: AS) -> None:
    key = foreign_key()
    reg = agent(authz)
    assert error_of(await exchange(authz, reg, foreign_jwt(key), subject_type=JWT_TYPE)) == "invalid_grant"
    trust(authz, foreign_key())  # trusted issuer, other key
    assert error_of(await exchange(authz, reg, foreign_jwt(key), subject_type=JWT_TYPE)) == "invalid_grant"


async def test_trusted_subject_token_checks(authz: AS) -> None:
    key = foreign_key()
    trust(authz, key)
    reg = agent(authz)

    async def refused(token: str) -> None:
        assert error_of(await exchange(authz, reg, token, subject_type=JWT_TYPE)) == "invalid_grant"

    await refused(foreign_jwt(key, aud="https://someone-else"))
    await refused(foreign_jwt(key, exp=int(time.time()) - 100))
    await refused(foreign_jwt(OctKey.import_key(b"k" * 32), alg="HS256"))
    await refused(foreign_jwt(key, sub=None))
    # as an access_token type it is never accepted: only our own access tokens are
    r = await exchange(authz, reg, foreign_jwt(key), subject_type=AT)
    assert error_of(r) == "invalid_grant"


async def test_an_idp_issuer_is_not_a_subject_issuer(authz: AS) -> None:
    key = foreign_key()
    trust(authz, key, kind="idp")
    assert error_of(await exchange(authz, agent(authz), foreign_jwt(key), subject_type=JWT_TYPE)) == "invalid_grant"


async def test_foreign_may_act_and_foreign_actor(authz: AS) -> None:
    key = foreign_key()
    trust(authz, key)
    reg = agent(authz)
    subject = foreign_jwt(key, may_act={"sub": "bot-7", "iss": FOREIGN})
    actor = foreign_jwt(key, sub="bot-7")
    r = await exchange(authz, reg, subject, subject_type=JWT_TYPE, actor_token=actor, actor_token_type=JWT_TYPE)
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["act"] == {"sub": "bot-7", "iss": FOREIGN}
    r = await exchange(authz, reg, subject, subject_type=JWT_TYPE)  # the client is not bot-7
    assert error_of(r) == "invalid_grant"


async def test_registering_an_issuer_refuses_unsafe_input(authz: AS) -> None:
    store: TrustStore = authz.ctx.store  # type: ignore[assignment]
    jwks = {"keys": [foreign_key().as_dict(private=False)]}
    with pytest.raises(ValueError, match="algorithms"):
        register_issuer(store, FOREIGN, "subject", jwks=jwks, algorithms=["HS256"])
    with pytest.raises(ValueError, match="algorithms"):
        register_issuer(store, FOREIGN, "subject", jwks=jwks, algorithms=["none"])
    with pytest.raises(ValueError, match="public"):
        register_issuer(store, FOREIGN, "subject", jwks={"keys": [foreign_key().as_dict(private=True)]})
    with pytest.raises(ValueError, match="kind"):
        register_issuer(store, FOREIGN, "other", jwks=jwks)
    with pytest.raises(ValueError, match="jwks_uri"):
        register_issuer(store, FOREIGN, "subject", jwks_uri="http://10.0.0.1/jwks")


# -- workflow -----------------------------------------------------------------------------------
async def test_workflow_is_carried_in_the_token(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    r = await exchange(authz, reg, user, workflow="wf:billing-42")
    assert r.status_code == 200, r.text
    hop1 = r.json()["access_token"]
    assert claims_of(hop1)["workflow"] == "wf:billing-42"
    carried = await exchange(authz, agent(authz, "agent-2"), hop1)
    assert claims_of(carried.json()["access_token"])["workflow"] == "wf:billing-42"
    same = await exchange(authz, agent(authz, "agent-3"), hop1, workflow="wf:billing-42")
    assert same.status_code == 200
    assert error_of(await exchange(authz, reg, hop1, workflow="wf:other")) == "invalid_request"
    assert error_of(await exchange(authz, reg, user, workflow="bad workflow!")) == "invalid_request"


# -- request shape and client -------------------------------------------------------------------
async def test_request_shape_errors(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    assert error_of(await exchange(authz, reg, user, subject_type="")) == "invalid_request"
    r = await exchange(authz, reg, user, subject_type="urn:ietf:params:oauth:token-type:id_token")
    assert error_of(r) == "invalid_request"
    assert error_of(await exchange(authz, reg, user, actor_token=user)) == "invalid_request"
    assert error_of(await exchange(authz, reg, user, actor_token_type=AT)) == "invalid_request"
    r = await exchange(authz, reg, user, requested_token_type="urn:ietf:params:oauth:token-type:refresh_token")
    assert error_of(r) == "invalid_request"
    ok = await exchange(authz, reg, user, requested_token_type=JWT_TYPE)
    assert ok.status_code == 200 and ok.json()["issued_token_type"] == AT


async def test_client_without_the_grant_type_is_unauthorized_client(authz: AS) -> None:
    user = await user_token(authz)
    reg = authz.machine_client("cc-only")
    assert error_of(await exchange(authz, reg, user)) == "unauthorized_client"


async def test_disabled_client_is_refused_like_client_credentials(authz: AS) -> None:
    user = await user_token(authz)
    reg = agent(authz)
    authz.ctx.store.set_client_status(reg.client_id, "disabled")
    authz.ctx.directory.invalidate("client", reg.client_id)
    cc = await authz.client_credentials(reg)
    assert error_of(await exchange(authz, reg, user)) == error_of(cc)


async def test_public_clients_cannot_exchange(authz: AS) -> None:
    user = await user_token(authz)
    r = await authz.http.post(
        "/token",
        data={
            "grant_type": TE,
            "client_id": "public-app",
            "subject_token": user,
            "subject_token_type": AT,
            "resource": RESOURCE,
        },
    )
    assert error_of(r) in ("invalid_client", "unauthorized_client")


# -- introspection, audit, metadata -------------------------------------------------------------
async def test_introspection_shows_the_act_chain(authz: AS) -> None:
    user = await user_token(authz)
    hop1 = (await exchange(authz, agent(authz, "agent-1"), user)).json()["access_token"]
    hop2 = (await exchange(authz, agent(authz, "agent-2"), hop1)).json()["access_token"]
    info = await authz.introspect(hop2)
    assert info["active"] is True and info["sub"] == claims_of(user)["sub"]
    assert info["act"] == {"sub": "agent-2", "client_id": "agent-2", "act": {"sub": "agent-1", "client_id": "agent-1"}}


async def test_exchange_is_audited_without_tokens(authz: AS) -> None:
    user = await user_token(authz)
    r = await exchange(authz, agent(authz), user, scope="tools:read")
    token = r.json()["access_token"]
    authz.ctx.audit.flush()
    events = [e for e in authz.ctx.store.list_audit(limit=1000) if e.event == "token.exchanged"]
    assert len(events) == 1
    event = events[0]
    # the subject is pseudonymised before it enters the record; the erasable mapping leads back to the user
    assert event.subject != claims_of(user)["sub"]
    assert authz.ctx.audit_store is not None
    assert event.subject == authz.ctx.audit_store.pseudonym_of(claims_of(user)["sub"])
    assert event.client_id == "agent-1" and event.resource == RESOURCE
    assert event.detail["actors"] == ["agent-1"] and event.detail["scope"] == "tools:read"
    text = json.dumps(event.detail)
    assert user not in text and token not in text


async def test_metadata_advertises_the_grants(authz: AS) -> None:
    doc = (await authz.http.get("/.well-known/oauth-authorization-server")).json()
    assert TE in doc["grant_types_supported"]
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in doc["grant_types_supported"]
    assert doc["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]


async def test_exchange_with_our_tokens_runs_inline(authz: AS) -> None:
    from authz.oauth.requests import AuthzRequest

    user = await user_token(authz)
    server = authz.app.state.server
    form = [("grant_type", TE), ("subject_token", user), ("subject_token_type", AT)]
    assert server.can_run_inline(AuthzRequest("POST", ISSUER + "/token", {}, form=form))
    key = foreign_key()
    trust(authz, key)
    foreign = [("grant_type", TE), ("subject_token", foreign_jwt(key)), ("subject_token_type", JWT_TYPE)]
    areq = AuthzRequest("POST", ISSUER + "/token", {}, form=foreign)
    assert not server.can_run_inline(areq)  # the issuer record is not cached yet
    r = await exchange(authz, agent(authz), foreign_jwt(key), subject_type=JWT_TYPE)
    assert r.status_code == 200, r.text
