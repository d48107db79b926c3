import pytest

from resource_server.discovery import metadata_url as as_metadata_url
from resource_server.metadata import metadata_paths, metadata_url
from tests.resource_server.conftest import ISSUER, RESOURCE, config

pytestmark = pytest.mark.anyio

EXPECTED = {
    "resource": RESOURCE,
    "authorization_servers": [ISSUER],
    "bearer_methods_supported": ["header"],
    "scopes_supported": ["notes:read", "tools:admin", "tools:read", "tools:write"],
    "resource_name": "test server",
    "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "RS256", "PS256"],
    "dpop_bound_access_tokens_required": False,
}


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"])
async def test_prm_served_at_both_urls_without_auth(make_harness, path) -> None:
    h = make_harness()
    response = await h.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == EXPECTED
    assert h.app.bodies == []  # never reached the app


async def test_prm_issuer_is_exact_and_offline_access_never_listed(make_harness) -> None:
    h = make_harness(issuer="http://as.test/tenant1", scopes_supported=("tools:read",))
    doc = (await h.client.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert doc["authorization_servers"] == ["http://as.test/tenant1"]
    assert doc["scopes_supported"] == ["tools:read"]
    with pytest.raises(ValueError, match="offline_access"):
        config(scopes_supported=("tools:read", "offline_access"))


async def test_prm_rejects_post_and_answers_preflight(make_harness) -> None:
    h = make_harness()
    assert (await h.client.post("/.well-known/oauth-protected-resource/mcp")).status_code == 405
    preflight = await h.client.options("/.well-known/oauth-protected-resource/mcp")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_well_known_urls() -> None:
    assert metadata_url("http://rs.test/mcp") == "http://rs.test/.well-known/oauth-protected-resource/mcp"
    assert metadata_paths("http://rs.test/mcp") == (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    )
    assert metadata_paths("http://rs.test") == ("/.well-known/oauth-protected-resource",)
    assert as_metadata_url("https://as.test/t1") == "https://as.test/.well-known/oauth-authorization-server/t1"
    assert as_metadata_url("https://as.test") == "https://as.test/.well-known/oauth-authorization-server"


def test_config_refuses_unsafe_values() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        config(algorithms=("HS256",))
    with pytest.raises(ValueError, match="algorithm"):
        config(algorithms=("none",))
    with pytest.raises(ValueError, match="client_id"):
        config(mode="introspection", client_id=None)
    with pytest.raises(ValueError, match="fragment"):
        config(resource="http://rs.test/mcp#x")
    config(mode="jwt", client_id=None, client_secret=None)  # jwt mode needs no credentials
