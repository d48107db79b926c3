"""RFC 6750 §3 / RFC 9728 §5.1 / MCP 2026-07-28 challenges."""

import json

import pytest

from tests.resource_server.fake_as import DELETE, FakeAS

pytestmark = pytest.mark.anyio

PRM = 'resource_metadata="http://rs.test/.well-known/oauth-protected-resource/mcp"'


def call(name: str, rid: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": {}}}


async def test_no_credentials_is_401_without_error_code(make_harness) -> None:
    h = make_harness()
    r = await h.call(None, call("write_note"))
    assert r.status_code == 401
    www = r.headers.get_list("www-authenticate")[0]  # the second challenge is DPoP's (test_dpop.py)
    assert www == f'Bearer scope="tools:write", {PRM}'
    assert "error=" not in r.headers["www-authenticate"]


async def test_other_scheme_is_treated_as_no_credentials(make_harness) -> None:
    h = make_harness()
    r = await h.call(None, headers={"authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    assert "error=" not in r.headers["www-authenticate"]


async def test_valid_token_reaches_the_app(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    r = await h.call(fake_as.mint())
    assert r.status_code == 200
    assert r.json() == {"sub": "user-1", "scopes": ["tools:read"]}


COMMON_BAD = [
    pytest.param(lambda a: "not-a-jwt", id="garbage"),
    pytest.param(lambda a: a.mint(exp=1_000_000, iat=999_000), id="expired"),
    pytest.param(lambda a: a.mint(aud="http://other.test/mcp"), id="wrong-audience"),
    pytest.param(lambda a: a.mint(aud=["http://other.test/mcp"]), id="wrong-audience-list"),
    pytest.param(lambda a: a.mint(iss="http://evil.test"), id="wrong-issuer"),
    pytest.param(lambda a: a.mint(iss="http://as.test/"), id="issuer-trailing-slash"),
    pytest.param(lambda a: a.mint_alg_none(), id="alg-none"),
    pytest.param(lambda a: a.mint_hs256(b"k" * 32), id="hs256"),
    pytest.param(lambda a: a.mint()[:-4] + "AAAA", id="bad-signature"),
]
# Checks the resource server makes itself on a JWT; in introspection mode the AS decides these.
LOCAL_BAD = [
    pytest.param(lambda a: a.mint(header={"typ": "JWT"}), id="wrong-typ"),
    pytest.param(lambda a: a.mint(header={"typ": DELETE}), id="no-typ"),
    pytest.param(lambda a: a.mint(nbf=4_000_000_000), id="not-yet-valid"),
    pytest.param(lambda a: a.mint(iat=DELETE), id="no-iat"),
    pytest.param(lambda a: a.mint(iat=4_000_000_000), id="iat-in-future"),
    pytest.param(lambda a: a.mint(sub=DELETE), id="no-sub"),
    pytest.param(lambda a: a.mint(client_id=DELETE), id="no-client-id"),
    pytest.param(lambda a: a.mint(exp=DELETE), id="no-exp"),
]
CASES = [pytest.param(m, *p.values, id=f"{m}-{p.id}") for m in ("jwt", "introspection", "hybrid") for p in COMMON_BAD]
CASES += [pytest.param(m, *p.values, id=f"{m}-{p.id}") for m in ("jwt", "hybrid") for p in LOCAL_BAD]


@pytest.mark.parametrize(("mode", "make_token"), CASES)
async def test_bad_tokens_are_401_invalid_token(make_harness, fake_as: FakeAS, mode, make_token) -> None:
    h = make_harness(mode=mode)
    token = make_token(fake_as)
    r = await h.call(token)
    assert r.status_code == 401, r.text
    www = r.headers["www-authenticate"]
    assert www.startswith('Bearer error="invalid_token"')
    assert PRM in www and 'scope="tools:read"' in www
    assert r.json()["error"] == "invalid_token"
    assert token not in r.text and token not in www
    assert h.app.bodies == []


async def test_application_at_jwt_typ_is_accepted_case_insensitively(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    assert (await h.call(fake_as.mint(header={"typ": "application/AT+JWT"}))).status_code == 200
    assert (await h.call(fake_as.mint(header={"typ": "AT+JWT"}))).status_code == 200


async def test_leeway_accepts_small_clock_skew(make_harness, fake_as: FakeAS) -> None:
    h = make_harness(leeway=30.0)
    import time

    now = int(time.time())
    assert (await h.call(fake_as.mint(exp=now - 5, iat=now - 60))).status_code == 200
    assert (await h.call(fake_as.mint(exp=now - 60, iat=now - 120))).status_code == 401


async def test_insufficient_scope_names_exactly_the_needed_scopes(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    r = await h.call(fake_as.mint(scope="tools:read"), call("admin_reset"))
    assert r.status_code == 403
    www = r.headers["www-authenticate"]
    assert www.startswith('Bearer error="insufficient_scope"')
    assert 'scope="tools:admin"' in www and PRM in www
    assert r.json()["error"] == "insufficient_scope"


async def test_batch_needs_the_union(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    batch = [
        call("add", 1),
        {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "notes://secret"}},
        call("write_note", 3),
    ]
    r = await h.call(fake_as.mint(scope="tools:read"), batch)
    assert r.status_code == 403
    assert 'scope="notes:read tools:read tools:write"' in r.headers["www-authenticate"]
    ok = await h.call(fake_as.mint(scope="tools:write notes:read"), batch)
    assert ok.status_code == 200


async def test_scope_hierarchy_broader_implies_narrower(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    admin = fake_as.mint(scope="tools:admin")
    for name in ("add", "write_note", "admin_reset"):
        assert (await h.call(admin, call(name))).status_code == 200
    assert (await h.call(fake_as.mint(scope="tools:write"), call("admin_reset"))).status_code == 403


async def test_get_and_delete_need_the_default_scopes(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    assert (await h.client.get("/mcp")).headers.get_list("www-authenticate")[0] == f'Bearer scope="tools:read", {PRM}'
    no_default = fake_as.mint(scope="notes:read")
    r = await h.client.get("/mcp", headers={"authorization": f"Bearer {no_default}"})
    assert r.status_code == 403
    r = await h.client.delete("/mcp", headers={"authorization": f"Bearer {fake_as.mint()}"})
    assert r.status_code == 200


async def test_token_in_query_string_is_400(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    token = fake_as.mint()
    r = await h.call(None, params={"access_token": token})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert token not in r.text


async def test_token_in_form_body_is_400(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    body = f"access_token={fake_as.mint()}".encode()
    r = await h.call(None, body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", "Bearer ab\u00e9c", "Bearer a,b"])
async def test_malformed_authorization_is_400(make_harness, value) -> None:
    h = make_harness()
    r = await h.call(None, headers={"authorization": value.encode("latin-1")})
    assert r.status_code == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


async def test_two_authorization_headers_are_400(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    token = fake_as.mint()
    r = await h.client.post(
        "/mcp",
        content=json.dumps(call("add")),
        headers=[("authorization", f"Bearer {token}"), ("authorization", f"Bearer {token}")],
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"mcp-method": "tools/call", "mcp-name": "add"}, 200),
        ({"mcp-method": "tools/call"}, 200),
        ({"mcp-method": "tools/list"}, 400),
        ({"mcp-method": "tools/call", "mcp-name": "admin_reset"}, 400),
        ({"mcp-name": "add"}, 400),
        # RFC 9110 §5.5: whitespace around a field value is not part of it (SEP-2243 conformance).
        ({"mcp-method": " tools/call ", "mcp-name": "  add  "}, 200),
        # SEP-2243 base64 form of a name: =?base64?<utf-8 payload>?=
        ({"mcp-method": "tools/call", "mcp-name": "=?base64?YWRk?="}, 200),
        ({"mcp-method": "tools/call", "mcp-name": "=?base64?YWRt?="}, 400),  # "adm"
        ({"mcp-method": "tools/call", "mcp-name": "=?base64?not base64?="}, 400),
    ],
)
async def test_routing_headers_must_agree_with_the_body(make_harness, fake_as: FakeAS, headers, status) -> None:
    h = make_harness()
    r = await h.call(fake_as.mint(), call("add", rid=7), headers=headers)
    assert r.status_code == status
    if status == 400:
        # The MCP answer for a header/body disagreement (what the SDK itself sends), not a challenge.
        body = r.json()
        assert body["jsonrpc"] == "2.0" and body["id"] == 7, body
        assert body["error"]["code"] == -32020, body
        assert "www-authenticate" not in r.headers


async def test_unprotected_paths_pass_through(make_harness) -> None:
    async def plain(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    h = make_harness(plain, protected_paths=("/mcp",))
    assert (await h.client.get("/health")).status_code == 204
    assert (await h.client.get("/mcpx")).status_code == 204
    assert (await h.client.get("/mcp")).status_code == 401
    assert (await h.client.get("/mcp/sub")).status_code == 401
