"""RFC 8414 metadata and the JWKS endpoint."""

from __future__ import annotations

import httpx2
import pytest

from tests.authz.conftest import AS, ASFactory

pytestmark = pytest.mark.anyio


@pytest.mark.requirement("rfc8414:issuer-exact")
async def test_metadata_issuer_is_byte_exact_and_lists_what_mcp_clients_require(authz: AS) -> None:
    r = await authz.http.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == "http://127.0.0.1:9100"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["client_id_metadata_document_supported"] is True
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(doc["grant_types_supported"])
    assert {"none", "client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert doc[name].startswith("http://127.0.0.1:9100/")


async def test_registration_endpoint_is_advertised_only_when_enabled(as_factory: ASFactory) -> None:
    closed = await as_factory()
    assert "registration_endpoint" not in (await closed.http.get("/.well-known/oauth-authorization-server")).json()


@pytest.mark.requirement("rfc8414:path-insertion")
async def test_issuer_with_a_path_serves_metadata_at_the_path_inserted_url(as_factory: ASFactory) -> None:
    server = await as_factory(issuer="http://127.0.0.1:9100/tenant1", dev_mode=True)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=server.app), base_url="http://127.0.0.1:9100")
    async with http:
        r = await http.get("/.well-known/oauth-authorization-server/tenant1")
        assert r.status_code == 200
        doc = r.json()
        assert doc["issuer"] == "http://127.0.0.1:9100/tenant1"
        assert doc["token_endpoint"] == "http://127.0.0.1:9100/tenant1/token"
        assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 404
        reg = server.machine_client()
        assert reg.client_secret
        t = await http.post(
            "/tenant1/token",
            data={"grant_type": "client_credentials", "resource": "http://127.0.0.1:9200/mcp"},
            auth=(reg.client_id, reg.client_secret),
        )
        assert t.status_code == 200, t.text


async def test_jwks_publishes_public_keys_only_with_kids(authz: AS) -> None:
    keys = (await authz.http.get("/jwks")).json()["keys"]
    assert len(keys) == 2  # the active key and the published next key
    for key in keys:
        assert key["kid"] and key["kty"] == "EC" and key["alg"] == "ES256"
        assert "d" not in key
