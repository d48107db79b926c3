"""RFC 7523 jwt-bearer grant with ID-JAG assertions (MCP Enterprise-Managed Authorization)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from authz.identity.registry import Registered
from authz.oauth.trust import register_issuer
from tests.authz.conftest import AS, ISSUER, OTHER_RESOURCE, RESOURCE, ASFactory
from tests.authz.oauth.grants.test_token_exchange import claims_of, error_of

pytestmark = pytest.mark.anyio

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP = "https://idp.example.com"


@pytest.fixture
def idp_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def trust_idp(authz: AS, key: ECKey, issuer: str = IDP, kind: str = "idp") -> None:
    register_issuer(authz.ctx.store, issuer, kind, jwks={"keys": [key.as_dict(private=False)]})  # type: ignore[arg-type]


def client(authz: AS, client_id: str = "wiki-app", **kw: Any) -> Registered:
    kw.setdefault("grant_types", [JWT_BEARER])
    return authz.client(client_id=client_id, name="Enterprise app", **kw)


def id_jag(key: Any, alg: str = "ES256", typ: str = "oauth-id-jag+jwt", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": IDP,
        "sub": "emp-123",
        "aud": ISSUER,
        "client_id": "wiki-app",
        "resource": RESOURCE,
        "scope": "tools:read tools:write",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
        "email": "emp@example.com",
    }
    body.update(claims)
    header: dict[str, Any] = {"alg": alg, "typ": typ}
    if isinstance(key, ECKey):
        header["kid"] = key.kid
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[alg])


async def grant(authz: AS, reg: Registered, assertion: str, **form: str) -> httpx2.Response:
    assert reg.client_secret is not None
    data = {"grant_type": JWT_BEARER, "assertion": assertion, **form}
    return await authz.http.post("/token", data=data, auth=(reg.client_id, reg.client_secret))


async def test_valid_id_jag_gets_a_token_for_its_resource(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    r = await grant(authz, reg, id_jag(idp_key), scope="tools:read")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "tools:read" and "refresh_token" not in body
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "emp-123" and claims["aud"] == RESOURCE and claims["client_id"] == "wiki-app"
    assert (await authz.introspect(body["access_token"]))["active"] is True


async def test_without_requested_scope_the_assertions_scopes_are_granted(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    r = await grant(authz, client(authz), id_jag(idp_key, scope="tools:write"))
    assert r.status_code == 200 and r.json()["scope"] == "tools:write"


async def test_scopes_are_requested_intersected_with_the_assertion(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    r = await grant(authz, reg, id_jag(idp_key, scope="tools:read"), scope="tools:read tools:write")
    assert r.status_code == 200 and r.json()["scope"] == "tools:read"
    r = await grant(authz, reg, id_jag(idp_key, scope="tools:read"), scope="tools:write")
    assert error_of(r) == "invalid_scope"


async def test_a_matching_resource_parameter_is_fine_another_is_invalid_target(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    assert (await grant(authz, reg, id_jag(idp_key), resource=RESOURCE)).status_code == 200
    assert error_of(await grant(authz, reg, id_jag(idp_key), resource=OTHER_RESOURCE)) == "invalid_target"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_typ", "invalid_grant"),
        ("jwt_typ", "invalid_grant"),
        ("alg_none", "invalid_grant"),
        ("hs256", "invalid_grant"),
        ("wrong_aud", "invalid_grant"),
        ("aud_list_with_others", "invalid_grant"),
        ("unknown_iss", "invalid_grant"),
        ("client_id_mismatch", "invalid_grant"),
        ("unknown_resource", "invalid_grant"),
        ("expired", "invalid_grant"),
        ("too_long", "invalid_grant"),
        ("no_iat", "invalid_grant"),
        ("no_sub", "invalid_grant"),
        ("no_jti", "invalid_grant"),
        ("cnf", "invalid_grant"),
        ("other_key", "invalid_grant"),
        ("subject_kind_issuer", "invalid_grant"),
    ],
)
async def test_bad_assertions_are_refused(authz: AS, idp_key: ECKey, case: str, error: str) -> None:
    trust_idp(authz, idp_key)
    trust_idp(authz, idp_key, issuer="https://subjects.example.com", kind="subject")
    now = int(time.time())
    assertion = {
        "wrong_typ": lambda: id_jag(idp_key, typ="at+jwt"),
        "jwt_typ": lambda: id_jag(idp_key, typ="JWT"),
        "alg_none": lambda: unsigned(id_jag(idp_key)),
        "hs256": lambda: id_jag(OctKey.import_key(b"s" * 32), alg="HS256"),
        "wrong_aud": lambda: id_jag(idp_key, aud="https://other-as.example.com"),
        "aud_list_with_others": lambda: id_jag(idp_key, aud=[ISSUER, "https://other-as.example.com"]),
        "unknown_iss": lambda: id_jag(idp_key, iss="https://evil.example.com"),
        "client_id_mismatch": lambda: id_jag(idp_key, client_id="another-app"),
        "unknown_resource": lambda: id_jag(idp_key, resource="http://127.0.0.1:9999/mcp"),
        "expired": lambda: id_jag(idp_key, iat=now - 700, exp=now - 400),
        "too_long": lambda: id_jag(idp_key, exp=now + 7200),
        "no_iat": lambda: id_jag(idp_key, iat=None),
        "no_sub": lambda: id_jag(idp_key, sub=None),
        "no_jti": lambda: id_jag(idp_key, jti=None),
        "cnf": lambda: id_jag(idp_key, cnf={"jkt": "abc"}),
        "other_key": lambda: id_jag(ECKey.generate_key("P-256", auto_kid=True)),
        "subject_kind_issuer": lambda: id_jag(idp_key, iss="https://subjects.example.com"),
    }[case]()
    assert error_of(await grant(authz, client(authz), assertion)) == error


def unsigned(token: str) -> str:
    """The same claims with ``alg: none`` and no signature."""
    _head, payload, _sig = token.split(".")
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "oauth-id-jag+jwt"}).encode()).rstrip(b"=")
    return f"{head.decode()}.{payload}."


async def test_replayed_jti_is_refused(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    assertion = id_jag(idp_key)
    assert (await grant(authz, reg, assertion)).status_code == 200
    assert error_of(await grant(authz, reg, assertion)) == "invalid_grant"


async def test_a_refused_request_does_not_burn_the_assertion(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    assertion = id_jag(idp_key, scope="tools:read")
    assert error_of(await grant(authz, reg, assertion, scope="tools:write")) == "invalid_scope"
    assert (await grant(authz, reg, assertion)).status_code == 200


async def test_client_without_the_grant_type_is_unauthorized_client(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz, grant_types=["client_credentials"])
    assert error_of(await grant(authz, reg, id_jag(idp_key))) == "unauthorized_client"


async def test_missing_assertion_is_invalid_request(authz: AS) -> None:
    reg = client(authz)
    assert reg.client_secret is not None
    r = await authz.http.post("/token", data={"grant_type": JWT_BEARER}, auth=(reg.client_id, reg.client_secret))
    assert error_of(r) == "invalid_request"


async def test_the_assertion_is_never_in_the_audit_trail(authz: AS, idp_key: ECKey) -> None:
    trust_idp(authz, idp_key)
    reg = client(authz)
    assertion = id_jag(idp_key)
    await grant(authz, reg, assertion)
    await grant(authz, reg, assertion)  # replay: a refusal is audited too
    authz.ctx.audit.flush()
    events = authz.ctx.store.list_audit(limit=1000)
    issued = [e for e in events if e.event == "token.issued" and e.detail.get("grant_type") == JWT_BEARER]
    assert len(issued) == 1 and issued[0].detail["idp"] == IDP
    assert all(assertion not in json.dumps(e.detail) for e in events)


# -- keys from a jwks_uri (fetched on a worker thread, then cached) -----------------------------
@pytest.fixture
def jwks_server(idp_key: ECKey) -> Iterator[tuple[str, list[int]]]:
    hits: list[int] = []
    body = json.dumps({"keys": [idp_key.as_dict(private=False)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(1)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", hits
    finally:
        server.shutdown()
        server.server_close()


async def test_idp_keys_from_a_jwks_uri_are_fetched_once(
    as_factory: ASFactory, idp_key: ECKey, jwks_server: tuple[str, list[int]]
) -> None:
    url, hits = jwks_server
    authz = await as_factory(dev_mode=True, cimd_allow_loopback=True, cache_staleness=30)
    register_issuer(authz.ctx.store, IDP, "idp", jwks_uri=url, allow_loopback=True)  # type: ignore[arg-type]
    reg = client(authz)
    for _ in range(3):
        r = await grant(authz, reg, id_jag(idp_key))
        assert r.status_code == 200, r.text
    assert len(hits) == 1


# -- the CLI ------------------------------------------------------------------------------------
def test_trust_cli_add_list_remove(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], idp_key: ECKey
) -> None:
    from authz.cli import main

    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AUTHZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTHZ_CONFIG", raising=False)
    jwks = tmp_path / "idp.jwks.json"
    jwks.write_text(json.dumps({"keys": [idp_key.as_dict(private=False)]}))
    assert main(["trust", "add", IDP, "--jwks-file", str(jwks), "--algorithms", "ES256"]) == 0
    assert "kind:       idp" in capsys.readouterr().out
    assert main(["trust", "add", "https://bad.example.com", "--jwks-file", str(jwks), "--algorithms", "HS256"]) == 1
    assert main(["trust", "add", "https://x.example.com", "--jwks-uri", "http://10.1.1.1/jwks"]) == 1
    capsys.readouterr()
    assert main(["trust", "list"]) == 0
    out = capsys.readouterr().out
    assert IDP in out and "inline (1 keys)" in out and "bad.example.com" not in out
    assert main(["trust", "remove", IDP]) == 0
    assert main(["trust", "remove", IDP]) == 1
