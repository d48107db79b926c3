"""Client ID Metadata Documents end to end: a real document server (uvicorn on loopback) and the AS app."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from authz.core.fetch import Fetcher
from authz.identity.clients import OAuthClient
from authz.oauth import cimd
from authz.oauth.cimd import CimdError, ClientJwks, validate_document
from tests.authz.conftest import AS, REDIRECT, ASFactory, pkce_pair, redirect_params
from tests.authz.core.test_fetch import DocServer, Served, docserver

pytestmark = pytest.mark.anyio
__all__ = ["docserver"]


def document(url: str, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT],
                           "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
                           "client_uri": "https://client.example/"}  # fmt: skip
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.fixture
async def cimd_as(as_factory: ASFactory) -> AS:
    return await as_factory(dev_mode=True, cimd_allow_loopback=True)


async def authorize(server: AS, client_id: str, **params: str) -> Any:
    _, challenge = pkce_pair()
    return await server.authorize(client_id, code_challenge=challenge, code_challenge_method="S256", **params)


def audit_events(server: AS, name: str, expected: int = 1) -> list[Any]:
    """Audit events are written by a background thread: wait (briefly) until ``expected`` are stored."""
    deadline = time.monotonic() + 3
    while True:
        server.ctx.audit.flush()
        events = [e for e in server.ctx.store.list_audit(0, 1000) if e.event == name]
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


def assert_error_page(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert "invalid_client" in response.text


async def test_valid_document_loads_and_completes_a_code_flow(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.put_json("/client.json", document(docserver.url("/client.json")),
                             headers={"Cache-Control": "max-age=600"})  # fmt: skip
    body, _ = await cimd_as.code_flow(url, scope="tools:read")
    assert body["access_token"] and body["refresh_token"]
    row = cimd_as.ctx.store.get_client(url)
    assert row is not None and row.kind == "cimd" and row.client_name == "Doc Client"
    assert row.token_endpoint_auth_method == "none" and row.secret_digest is None
    assert row.extra["client_uri"] == "https://client.example/"
    assert row.expires_at is not None and abs(row.expires_at - (time.time() + 600)) < 30
    loaded = audit_events(cimd_as, "client.cimd_loaded")
    assert [e.client_id for e in loaded] == [url]


async def test_cache_is_used_within_max_age_and_refetched_after_expiry(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.put_json("/c.json", document(docserver.url("/c.json")), headers={"Cache-Control": "max-age=300"})
    assert (await authorize(cimd_as, url)).status_code == 302
    assert (await authorize(cimd_as, url)).status_code == 302
    assert docserver.count("/c.json") == 1
    # time passes: the row's cache lifetime is over
    row = cimd_as.ctx.store.get_client(url)
    assert row is not None
    row.expires_at = int(time.time()) - 1
    cimd_as.ctx.store.put_client(row)
    docserver.put_json("/c.json", document(url, client_name="Renamed"), headers={"Cache-Control": "max-age=300"})
    assert (await authorize(cimd_as, url)).status_code == 302
    assert docserver.count("/c.json") == 2
    row = cimd_as.ctx.store.get_client(url)
    assert row is not None and row.client_name == "Renamed"
    assert cimd_as.ctx.directory.client(url) is not None
    assert cimd_as.ctx.directory.client(url).client_name == "Renamed"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"client_id": "https://other.example/client.json"}, "client_id"),
        ({"redirect_uris": None}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"client_name": None}, "client_name"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method"),
        ({"client_secret": "s3cr3t"}, "secret"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "jwks"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "https"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "fragment"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}]}}, "public keys"),
        ({"client_uri": "javascript:alert(1)"}, "client_uri must be an https URL"),
        ({"logo_uri": "data:image/svg+xml,<svg onload=alert(1)>"}, "logo_uri must be an https URL"),
    ],
)
@pytest.mark.requirement("mcp:as-cimd-client-id-match")
async def test_invalid_documents_are_rejected(
    cimd_as: AS, docserver: DocServer, overrides: dict[str, Any], why: str
) -> None:
    url = docserver.url("/bad.json")
    docserver.put_json("/bad.json", document(url, **overrides))
    r = await authorize(cimd_as, url)
    assert_error_page(r)
    assert why in r.text
    assert cimd_as.ctx.store.get_client(url) is None  # draft §5.2: invalid documents are not cached
    rejected = audit_events(cimd_as, "client.cimd_rejected")
    assert [e.reason for e in rejected] == ["invalid_document"]
    assert "s3cr3t" not in str(rejected[0].detail)


@pytest.mark.requirement("mcp:as-cimd-redirect-validated")
async def test_redirect_uri_not_in_document_is_an_error_page(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.put_json("/client.json", document(docserver.url("/client.json")))
    r = await authorize(cimd_as, url, redirect_uri="https://attacker.example/callback")
    assert r.status_code == 400, r.text
    assert "location" not in r.headers
    assert cimd_as.ctx.store.get_client(url) is not None  # the document itself was fine


async def test_oversize_document_is_rejected(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.url("/big.json")
    docserver.put_json("/big.json", document(url, x_padding="x" * 6000))
    r = await authorize(cimd_as, url)
    assert_error_page(r)
    assert [e.reason for e in audit_events(cimd_as, "client.cimd_rejected")] == ["too_large"]


async def test_deeply_nested_document_is_rejected_not_a_500(cimd_as: AS, docserver: DocServer) -> None:
    """A 5 KB document of nested arrays made ``json.loads`` raise RecursionError (a 500 at /authorize)."""
    url = docserver.url("/deep.json")
    head = json.dumps(document(url))[:-1].encode() + b', "x_deep": '
    docserver.docs["/deep.json"] = Served(head + b"[" * 2_400 + b"]" * 2_400 + b"}")
    assert len(docserver.docs["/deep.json"].body) < 5_120
    assert_error_page(await authorize(cimd_as, url))
    assert cimd_as.ctx.store.get_client(url) is None
    assert [e.reason for e in audit_events(cimd_as, "client.cimd_rejected")] == ["too_deep"]


async def test_error_status_and_redirects_are_rejected(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.url("/moved.json")
    docserver.docs["/moved.json"] = Served(b"", 301, {"Location": docserver.url("/client.json")})
    docserver.put_json("/client.json", document(url))
    assert_error_page(await authorize(cimd_as, url))
    assert docserver.count("/client.json") == 0
    assert_error_page(await authorize(cimd_as, docserver.url("/missing.json")))
    reasons = [e.reason for e in audit_events(cimd_as, "client.cimd_rejected", expected=2)]
    assert reasons == ["redirect", "http_status"]


async def test_slow_server_times_out(as_factory: ASFactory, docserver: DocServer) -> None:
    server = await as_factory(dev_mode=True, cimd_allow_loopback=True, cimd_fetch_timeout=0.3)
    url = docserver.url("/slow.json")
    docserver.docs["/slow.json"] = Served(b"{}", delay=5)
    assert_error_page(await authorize(server, url))
    assert [e.reason for e in audit_events(server, "client.cimd_rejected")] == ["timeout"]


async def test_private_addresses_refused_without_traffic(as_factory: ASFactory, docserver: DocServer) -> None:
    server = await as_factory(dev_mode=True)  # cimd_allow_loopback off: production behaviour
    path = "/client.json"
    docserver.put_json(path, document(docserver.url(path)))
    for url in (f"https://127.0.0.1:{docserver.port}{path}", "https://10.0.0.1/client.json",
                f"https://localhost:{docserver.port}{path}", "https://[::1]/client.json"):  # fmt: skip
        assert_error_page(await authorize(server, url))
    r = await authorize(server, docserver.url(path))  # plain http is not a CIMD client_id here at all
    assert r.status_code == 400 and "location" not in r.headers
    assert docserver.hits == {}


async def test_cimd_disabled_never_fetches(as_factory: ASFactory, docserver: DocServer) -> None:
    server = await as_factory(dev_mode=True, cimd_allow_loopback=True, client_id_metadata_documents=False)
    url = docserver.put_json("/client.json", document(docserver.url("/client.json")))
    r = await authorize(server, url)
    assert r.status_code == 400 and "location" not in r.headers
    assert docserver.hits == {}


async def test_pre_registered_url_client_is_not_fetched(cimd_as: AS, docserver: DocServer) -> None:
    url = docserver.put_json("/client.json", document(docserver.url("/client.json")))
    cimd_as.public_client(client_id=url)
    r = await authorize(cimd_as, url)
    assert r.status_code == 302 and "code" in redirect_params(r)
    assert docserver.hits == {}


# -- document rules that need no server -------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["https://app.example", "https://app.example/a/../b", "https://u:p@app.example/c", "https://app.example/c#x"]
)
def test_client_id_url_shape(url: str) -> None:
    with pytest.raises(CimdError):
        cimd.check_client_id_url(url)


def test_defaults_and_ignored_fields() -> None:
    url = "https://app.example/client.json"
    meta = {"client_id": url, "client_name": "A", "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", "implicit"], "logo_uri": "https://app.example/l.png"}  # fmt: skip
    doc = validate_document(url, meta)
    assert doc.grant_types == ("authorization_code",) and doc.auth_method == "none"
    assert doc.application_type == "web" and doc.extra == {"logo_uri": "https://app.example/l.png"}
    native = validate_document(url, {"client_id": url, "client_name": "A", "redirect_uris": [REDIRECT]})
    assert native.application_type == "native" and native.grant_types == ("authorization_code",)


# -- client keys from jwks_uri ----------------------------------------------------------------
def _client(jwks_uri: str | None = None, jwks: dict[str, Any] | None = None) -> OAuthClient:
    return OAuthClient(client_id="https://app.example/c.json", kind="cimd", client_name="A",
                       token_endpoint_auth_method="private_key_jwt", redirect_uris=(), grant_types=frozenset(),
                       scopes=None, allowed_resources=None, status="active", jwks=jwks, jwks_uri=jwks_uri)  # fmt: skip


async def test_client_jwks_fetches_caches_and_backs_off(docserver: DocServer) -> None:
    keys = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k1"}]}
    url = docserver.put_json("/jwks.json", keys, headers={"Cache-Control": "max-age=600"})
    fetcher = Fetcher(allow_loopback=True, timeout=2)
    jwks_for = ClientJwks(fetcher)
    inline = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc"}]}
    assert jwks_for(_client(jwks=inline)) == inline
    assert jwks_for(_client()) is None
    assert jwks_for(_client(url)) == keys
    assert jwks_for(_client(url)) == keys
    assert docserver.count("/jwks.json") == 1  # cached per max-age
    broken = docserver.url("/broken.json")
    docserver.docs["/broken.json"] = Served(b"oops", 500)
    assert jwks_for(_client(broken)) is None
    assert jwks_for(_client(broken)) is None
    assert docserver.count("/broken.json") == 1  # failure: at most one try per 30 s
    private = docserver.put_json("/private.json", {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    assert jwks_for(_client(private)) is None
    fetcher.close()
