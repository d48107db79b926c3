"""The token endpoint: client_credentials, client authentication, resource indicators, scopes, errors."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from tests.authz.conftest import AS, OTHER_RESOURCE, RESOURCE

pytestmark = pytest.mark.anyio


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def header_of(token: str) -> dict[str, object]:
    head = token.split(".")[0]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return data


@pytest.mark.requirement("rfc9068:claims")
@pytest.mark.requirement("rfc8707:aud-is-resource")
async def test_client_credentials_token_is_an_rfc9068_jwt_bound_to_the_resource(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.client_credentials(reg, scope="tools:read")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "tools:read" and body["expires_in"] == 300
    assert "refresh_token" not in body
    assert header_of(body["access_token"])["typ"] == "at+jwt"
    claims = claims_of(body["access_token"])
    assert claims["iss"] == "http://127.0.0.1:9100"
    assert claims["aud"] == RESOURCE
    assert claims["sub"] == claims["client_id"] == "agent-1"
    assert claims["scope"] == "tools:read"
    assert isinstance(claims["jti"], str) and isinstance(claims["iat"], int)
    assert claims["exp"] == claims["iat"] + 300  # type: ignore[operator]


async def test_client_secret_post_authenticates(authz: AS) -> None:
    reg = authz.machine_client(auth_method="client_secret_post")
    r = await authz.http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "resource": RESOURCE,
            "client_id": reg.client_id,
            "client_secret": reg.client_secret,
        },
    )
    assert r.status_code == 200, r.text


@pytest.mark.requirement("rfc6749:invalid-client-401")
async def test_wrong_secret_is_401_invalid_client_with_a_basic_challenge_and_is_audited(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE},
        auth=(reg.client_id, "not-the-secret"),
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].lower().startswith("basic")
    assert r.headers["cache-control"] == "no-store"
    authz.ctx.audit.flush()
    events = [e for e in authz.ctx.store.list_audit(0, 1000) if e.event == "token.refused"]
    assert events and events[-1].reason == "invalid_client" and events[-1].client_id == reg.client_id
    dump = json.dumps([e.detail for e in authz.ctx.store.list_audit(0, 1000)])
    assert "not-the-secret" not in dump and str(reg.client_secret) not in dump


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize(
    "credentials",
    [
        "Basic \u00ff\u00ff\u00ff",  # not ASCII: base64 cannot decode it
        "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),  # base64 of bytes that are not UTF-8
    ],
)
async def test_undecodable_basic_credentials_are_401_invalid_client(authz: AS, path: str, credentials: str) -> None:
    """A Basic header that is not base64 of UTF-8 text authenticates nobody: 401 ``invalid_client``
    with a Basic challenge (RFC 6749 §5.2), never a 500, on every endpoint that authenticates clients."""
    data = {"grant_type": "client_credentials", "resource": RESOURCE, "token": "x"}
    r = await authz.http.post(path, data=data, headers={"authorization": credentials.encode("latin-1")})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].lower().startswith("basic")


async def test_unknown_client_is_invalid_client(authz: AS) -> None:
    r = await authz.http.post(
        "/token", data={"grant_type": "client_credentials", "resource": RESOURCE}, auth=("nobody", "x")
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.requirement("rfc8707:invalid-target")
@pytest.mark.parametrize(
    "resource",
    [
        None,  # missing
        "http://127.0.0.1:9999/unknown",  # not registered
        "http://127.0.0.1:9200/mcp#frag",  # fragment
        "not a uri",  # malformed
        "urn:example:thing",  # not http(s)
    ],
)
async def test_bad_resource_is_invalid_target(authz: AS, resource: str | None) -> None:
    reg = authz.machine_client()
    data = {"grant_type": "client_credentials"}
    if resource is not None:
        data["resource"] = resource
    assert reg.client_secret
    r = await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_target"


async def test_two_resources_in_one_request_are_invalid_target(authz: AS) -> None:
    reg = authz.machine_client()
    assert reg.client_secret
    r = await authz.http.post(
        "/token",
        content=f"grant_type=client_credentials&resource={RESOURCE}&resource={OTHER_RESOURCE}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(reg.client_id, reg.client_secret),
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


async def test_a_resource_the_client_may_not_use_is_invalid_target(authz: AS) -> None:
    reg = authz.machine_client(resources=[RESOURCE])
    r = await authz.client_credentials(reg, resource=OTHER_RESOURCE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


async def test_resource_is_canonicalised_before_matching(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.client_credentials(reg, resource="HTTP://127.0.0.1:9200/mcp")
    assert r.status_code == 200
    assert claims_of(r.json()["access_token"])["aud"] == RESOURCE


async def test_scope_is_narrowed_to_what_is_permitted_and_reported(authz: AS) -> None:
    reg = authz.machine_client(scope="tools:read")
    r = await authz.client_credentials(reg, scope="tools:read tools:write files:read")
    assert r.status_code == 200
    assert r.json()["scope"] == "tools:read"


async def test_no_permitted_scope_is_invalid_scope(authz: AS) -> None:
    reg = authz.machine_client(scope="tools:read")
    r = await authz.client_credentials(reg, scope="tools:write")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_omitted_scope_grants_everything_permitted(authz: AS) -> None:
    reg = authz.machine_client()
    r = await authz.client_credentials(reg)
    assert r.json()["scope"] == "tools:read tools:write"


async def test_client_without_the_grant_type_is_unauthorized_client(authz: AS) -> None:
    reg = authz.client(client_id="web", redirect_uris=["https://app.example/cb"])
    r = await authz.client_credentials(reg)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


async def test_disabled_client_gets_no_token(authz: AS) -> None:
    reg = authz.machine_client()
    authz.ctx.store.set_client_status(reg.client_id, "disabled")
    authz.ctx.directory.invalidate("client", reg.client_id)
    r = await authz.client_credentials(reg)
    assert r.status_code in (400, 401)
    assert r.json()["error"] in ("unauthorized_client", "invalid_client")


async def test_unsupported_grant_type(authz: AS) -> None:
    r = await authz.http.post("/token", data={"grant_type": "password", "username": "a", "password": "b"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


async def test_json_body_is_invalid_request(authz: AS) -> None:
    r = await authz.http.post("/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert r.headers["cache-control"] == "no-store"


async def test_get_is_not_allowed(authz: AS) -> None:
    assert (await authz.http.get("/token")).status_code == 405


async def test_the_admin_api_needs_an_explicitly_registered_client(authz: AS) -> None:
    """The "any registered resource" default never reaches the admin API (an agent must not mint admin tokens)."""
    reg = authz.machine_client()
    r = await authz.client_credentials(reg, resource="http://127.0.0.1:9100/api/v1", scope="admin:write")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    admin = authz.machine_client(client_id="ops", resources=["http://127.0.0.1:9100/api/v1"])
    r = await authz.client_credentials(admin, resource="http://127.0.0.1:9100/api/v1", scope="admin:read")
    assert r.status_code == 200, r.text


async def test_direct_dispatch_answers_as_the_starlette_route_does(authz: AS) -> None:
    """``POST /token`` skips Starlette's router and response objects; the answer — status, headers
    in order, body — is the one the ``/token`` route gives through the whole Starlette stack."""
    app = authz.app

    async def through_starlette(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    transport = httpx2.ASGITransport(app=through_starlette)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:9100") as routed:
        reg = authz.machine_client()
        data = {"grant_type": "client_credentials", "resource": RESOURCE, "scope": "tools:read"}
        for auth in [(reg.client_id, "wrong"), ("nobody", "x")]:
            fast = await authz.http.post("/token", data=data, auth=auth)
            slow = await routed.post("/token", data=data, auth=auth)
            assert fast.status_code == slow.status_code == 401
            assert fast.headers.multi_items() == slow.headers.multi_items()
            assert fast.content == slow.content
        fast = await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret))
        slow = await routed.post("/token", data=data, auth=(reg.client_id, reg.client_secret))
        assert fast.status_code == slow.status_code == 200
        assert [k for k, _ in fast.headers.multi_items()] == [k for k, _ in slow.headers.multi_items()]
        assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
        assert fast.json().keys() == slow.json().keys()
        bad = {**data, "grant_type": "nope"}
        fast = await authz.http.post("/token", data=bad, auth=(reg.client_id, reg.client_secret))
        slow = await routed.post("/token", data=bad, auth=(reg.client_id, reg.client_secret))
        assert (fast.status_code, fast.headers.multi_items(), fast.content) == (
            slow.status_code,
            slow.headers.multi_items(),
            slow.content,
        )
