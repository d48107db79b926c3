"""The official MCP SDK client against a real ``authz serve`` and the real demo MCP server.

Processes: ``authz serve --dev`` (auto sign-in of the dev user, auto consent, open dynamic
registration) and ``python -m resource_server.demo --mode hybrid`` with the introspection
credentials printed by ``authz resources add``. The SDK discovers everything from the MCP
server's 401 challenge: protected resource metadata, AS metadata, DCR, PKCE, ``resource``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from conformance.procs import AuthzServer
from tests.e2e._processes import (
    INITIALIZE,
    MCP_HEADERS,
    Processes,
    add_client,
    add_resource,
    jwt_parts,
    processes,  # noqa: F401  (fixture)
    start_demo_mcp,
    tools_call,
    user_id,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEMO_SCOPES = "tools:read tools:write tools:admin"
REVOCATION_BOUND = 5.0 + 0.1  # the demo's hybrid revocation_staleness + the AS cache_staleness
BOUNDED_WAIT = REVOCATION_BOUND + 10.0  # generous slack for slow machines, still bounded


@dataclass
class Stack:
    authz: AuthzServer
    mcp_url: str
    rs_id: str
    rs_secret: str
    processes: Processes

    def authz_url(self, path: str) -> str:
        return self.authz.url + path


@pytest.fixture
def stack(processes: Processes, authz_server_factory: Any, free_port: Callable[[], int]) -> Stack:  # noqa: F811
    # Development mode (auto sign-in and consent) with open dynamic registration; registrations made
    # through the CLI while it runs are seen within AUTHZ_CACHE_STALENESS.
    authz: AuthzServer = authz_server_factory(
        dev=True, env={"AUTHZ_DYNAMIC_REGISTRATION": "1", "AUTHZ_CACHE_STALENESS": "0.1"}
    )
    mcp_port = free_port()
    rs_id, rs_secret = add_resource(authz, f"http://127.0.0.1:{mcp_port}/mcp", DEMO_SCOPES, name="e2e demo")
    mcp_url, _ = start_demo_mcp(
        processes, authz.issuer, mcp_port, mode="hybrid", client_id=rs_id, client_secret=rs_secret
    )
    return Stack(authz, mcp_url, rs_id, rs_secret, processes)


# -- SDK plumbing -----------------------------------------------------------------------------
@dataclass
class MemoryStorage:
    """The SDK's ``TokenStorage`` in memory."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class HeadlessBrowser:
    """Plays the user agent: GETs the authorization URL (dev mode answers with the redirect at once)."""

    authorization_urls: list[str] = field(default_factory=list)
    redirects: list[dict[str, str]] = field(default_factory=list)

    async def redirect_handler(self, url: str) -> None:
        self.authorization_urls.append(url)
        async with httpx2.AsyncClient(timeout=10) as http:
            r = await http.get(url, follow_redirects=False)
        assert r.status_code in (302, 303), f"authorization endpoint answered {r.status_code}: {r.text[:500]}"
        query = parse_qs(urlsplit(r.headers["location"]).query)
        self.redirects.append({k: v[0] for k, v in query.items()})

    async def callback_handler(self) -> AuthorizationCodeResult:
        q = self.redirects[-1]
        assert "code" in q, f"authorization failed: {q}"
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    def last_query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.authorization_urls[-1]).query).items()}


REDIRECT_PORT = 3999  # never listened on: the headless browser reads the Location header instead


def user_provider(stack: Stack, browser: HeadlessBrowser, storage: MemoryStorage) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        client_name="e2e SDK client",
        redirect_uris=[f"http://127.0.0.1:{REDIRECT_PORT}/callback"],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=stack.mcp_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )


def tool_json(result: Any) -> Any:
    assert not result.is_error, result
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(result.content[0].text)


async def call_tool(url: str, auth: httpx2.Auth, name: str, arguments: dict[str, Any] | None = None) -> Any:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return tool_json(await client.call_tool(name, arguments or {}))


async def introspect(stack: Stack, token: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(timeout=10) as http:
        r = await http.post(stack.authz_url("/introspect"), data={"token": token}, auth=(stack.rs_id, stack.rs_secret))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def raw_call(url: str, token: str) -> httpx2.Response:
    """A bare ``tools/call whoami`` with a bearer token (stateless server: no session needed)."""
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(
            url, json=tools_call("whoami"), headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
        )


async def machine_token(stack: Stack, client_id: str, secret: str, resource: str, scope: str = "tools:read") -> str:
    async with httpx2.AsyncClient(timeout=10) as http:
        r = await http.post(
            stack.authz_url("/token"),
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "resource": resource, "scope": scope},
        )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def until_rejected(url: str, token: str) -> tuple[httpx2.Response, float]:
    """Call until the server answers 401 (bounded by BOUNDED_WAIT); returns the last response and the delay."""
    started = time.monotonic()
    while True:
        r = await raw_call(url, token)
        if r.status_code != 200 or time.monotonic() - started > BOUNDED_WAIT:
            return r, time.monotonic() - started
        await anyio.sleep(0.25)


# -- tests ------------------------------------------------------------------------------------
async def test_authorization_code_flow_with_dcr_pkce_and_resource(stack: Stack) -> None:
    browser, storage = HeadlessBrowser(), MemoryStorage()
    who = await call_tool(stack.mcp_url, user_provider(stack, browser, storage), "whoami")

    # The SDK registered itself (RFC 7591) and the AS knows the client.
    assert storage.client_info is not None and storage.client_info.client_id
    client_id = storage.client_info.client_id
    assert client_id in stack.authz.cli("clients", "list").stdout
    # One authorization request: PKCE S256 and the MCP server as resource; the response carried iss.
    assert len(browser.authorization_urls) == 1
    q = browser.last_query()
    assert q["code_challenge_method"] == "S256" and q["code_challenge"]
    assert q["resource"] == stack.mcp_url
    assert q["client_id"] == client_id
    assert browser.redirects[0]["iss"] == stack.authz.issuer
    assert browser.redirects[0]["state"] == q["state"]

    # whoami: the dev user, the registered client, the scopes of the token.
    dev_user_id = user_id(stack.authz, "demo")
    assert who["subject"] == dev_user_id, who
    assert who["client_id"] == client_id
    assert who["sdk_subject"] == dev_user_id and who["sdk_client_id"] == client_id
    assert "tools:read" in who["scopes"]

    # The stored token: an RFC 9068 JWT for exactly this MCP server from this issuer.
    assert storage.tokens is not None
    token = storage.tokens.access_token
    header, claims = jwt_parts(token)
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt"), header
    assert claims["aud"] in (stack.mcp_url, [stack.mcp_url]), claims
    assert claims["iss"] == stack.authz.issuer
    assert claims["sub"] == dev_user_id
    assert claims["client_id"] == client_id
    assert set(who["scopes"]) == set(claims["scope"].split())

    # Introspection with the MCP server's own credentials agrees.
    info = await introspect(stack, token)
    assert info["active"] is True, info
    assert info["sub"] == dev_user_id and info["client_id"] == client_id
    assert info["iss"] == stack.authz.issuer


@pytest.mark.parametrize(
    "registration",
    [
        "preregistered",
        "dcr",
    ],
)
async def test_step_up_to_a_wider_scope(stack: Stack, registration: str) -> None:
    browser, storage = HeadlessBrowser(), MemoryStorage()
    provider = user_provider(stack, browser, storage)
    if registration == "preregistered":
        redirect = f"http://127.0.0.1:{REDIRECT_PORT}/callback"
        client_id, _ = add_client(stack.authz, "--public", "--name", "e2e SDK client", "--redirect-uri", redirect)
        storage.client_info = OAuthClientInformationFull(
            client_id=client_id,
            redirect_uris=[redirect],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http)) as client,
    ):
        who = tool_json(await client.call_tool("whoami", {}))
        assert storage.tokens is not None
        first_scope = set((storage.tokens.scope or "").split())
        # The first authorization asked only for what the 401 challenge named.
        assert "tools:read" in first_scope and "tools:write" not in first_scope, first_scope
        assert "tools:write" not in who["scopes"]
        assert len(browser.authorization_urls) == 1

        # write_note needs tools:write: the server answers 403 insufficient_scope naming that scope ...
        async with httpx2.AsyncClient(timeout=10) as raw:
            r = await raw.post(
                stack.mcp_url,
                json=tools_call("write_note", {"text": "x"}),
                headers={**MCP_HEADERS, "authorization": f"Bearer {storage.tokens.access_token}"},
            )
        assert r.status_code == 403, r.text
        challenge = r.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge and 'scope="tools:write"' in challenge, challenge
        # ... and the SDK re-authorizes with the union of its scopes and the challenged ones.
        count = tool_json(await client.call_tool("write_note", {"text": "hello"}))
        assert count == 1
        who_after = tool_json(await client.call_tool("whoami", {}))

    assert len(browser.authorization_urls) == 2, browser.authorization_urls
    requested = set(browser.last_query()["scope"].split())
    assert {"tools:read", "tools:write"} <= requested, requested
    final_scope = set((storage.tokens.scope or "").split())
    assert {"tools:read", "tools:write"} <= final_scope, final_scope
    assert {"tools:read", "tools:write"} <= set(jwt_parts(storage.tokens.access_token)[1]["scope"].split())
    assert {"tools:read", "tools:write"} <= set(who_after["scopes"])
    assert who_after["subject"] == who["subject"]


async def test_token_for_another_mcp_server_is_rejected(stack: Stack, free_port: Callable[[], int]) -> None:
    other = f"http://127.0.0.1:{free_port()}/mcp"
    add_resource(stack.authz, other, "tools:read")
    client_id, secret = add_client(stack.authz, "--name", "agent")
    assert secret is not None
    good = await machine_token(stack, client_id, secret, stack.mcp_url)
    assert (await raw_call(stack.mcp_url, good)).status_code == 200  # the client itself is fine

    foreign = await machine_token(stack, client_id, secret, other)
    assert jwt_parts(foreign)[1]["aud"] in (other, [other])
    r = await raw_call(stack.mcp_url, foreign)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.lower().startswith("bearer") and 'error="invalid_token"' in challenge, challenge
    assert "resource_metadata=" in challenge


async def test_revoked_token_stops_working_within_the_bound(stack: Stack) -> None:
    client_id, secret = add_client(stack.authz, "--name", "agent")
    assert secret is not None
    token = await machine_token(stack, client_id, secret, stack.mcp_url)
    assert (await raw_call(stack.mcp_url, token)).status_code == 200  # now cached as active by the RS

    async with httpx2.AsyncClient(timeout=10) as http:
        r = await http.post(
            stack.authz_url("/revoke"),
            data={"token": token, "token_type_hint": "access_token"},
            auth=(client_id, secret),
        )
    assert r.status_code == 200, r.text
    assert (await introspect(stack, token))["active"] is False

    r, delay = await until_rejected(stack.mcp_url, token)
    assert r.status_code == 401, f"revoked token still accepted after {delay:.1f} s: {r.status_code} {r.text[:300]}"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_disabled_client_stops_working_within_the_bound(stack: Stack) -> None:
    client_id, secret = add_client(stack.authz, "--name", "agent")
    assert secret is not None
    token = await machine_token(stack, client_id, secret, stack.mcp_url)
    assert (await raw_call(stack.mcp_url, token)).status_code == 200

    stack.authz.cli("clients", "disable", client_id)

    r, delay = await until_rejected(stack.mcp_url, token)
    assert r.status_code == 401, f"disabled client's token still accepted after {delay:.1f} s: {r.status_code}"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    # And it cannot get new tokens.
    async with httpx2.AsyncClient(timeout=10) as http:
        t = await http.post(
            stack.authz_url("/token"),
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "resource": stack.mcp_url},
        )
    assert t.status_code in (400, 401), t.text
    assert t.json()["error"] in ("invalid_client", "unauthorized_client"), t.text


async def test_client_credentials_provider_client_secret_basic(stack: Stack) -> None:
    client_id, secret = add_client(stack.authz, "--name", "basic agent", "--auth-method", "client_secret_basic")
    assert secret is not None
    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(
        stack.mcp_url,
        storage,
        client_id,
        secret,
        token_endpoint_auth_method="client_secret_basic",
        scope="tools:read",
        issuer=stack.authz.issuer,
    )
    who = await call_tool(stack.mcp_url, provider, "whoami")
    assert who["client_id"] == client_id
    assert who["scopes"] == ["tools:read"]
    assert storage.tokens is not None
    claims = jwt_parts(storage.tokens.access_token)[1]
    assert claims["aud"] in (stack.mcp_url, [stack.mcp_url]) and claims["client_id"] == client_id
    assert (await call_tool(stack.mcp_url, provider, "add", {"a": 2, "b": 3})) == 5


async def test_private_key_jwt_provider(stack: Stack, tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = ECKey.import_key(pem).as_dict(private=False)
    jwk.update({"kid": "e2e-1", "alg": "ES256", "use": "sig"})
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    client_id, secret = add_client(
        stack.authz,
        "--name",
        "jwt agent",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        str(jwks_file),
        "--grant-type",
        "client_credentials",
    )
    assert secret is None  # no shared secret for private_key_jwt

    params = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=pem, signing_algorithm="ES256")
    storage = MemoryStorage()
    provider = PrivateKeyJWTOAuthProvider(
        stack.mcp_url,
        storage,
        client_id,
        params.create_assertion_provider(),
        scope="tools:read",
        issuer=stack.authz.issuer,
    )
    who = await call_tool(stack.mcp_url, provider, "whoami")
    assert who["client_id"] == client_id
    assert "tools:read" in who["scopes"]
    assert storage.tokens is not None
    assert jwt_parts(storage.tokens.access_token)[1]["client_id"] == client_id

    # A key the AS does not know is refused: the provider cannot obtain a token.
    stranger = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    bad = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=stranger, signing_algorithm="ES256")
    bad_storage = MemoryStorage()
    bad_provider = PrivateKeyJWTOAuthProvider(
        stack.mcp_url,
        bad_storage,
        client_id,
        bad.create_assertion_provider(),
        scope="tools:read",
        issuer=stack.authz.issuer,
    )
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the failed token request in several ways
        await call_tool(stack.mcp_url, bad_provider, "whoami")
    assert bad_storage.tokens is None


async def test_unauthenticated_initialize_is_challenged(stack: Stack) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        r = await http.post(stack.mcp_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert (
        f'resource_metadata="http://127.0.0.1:{urlsplit(stack.mcp_url).port}/.well-known/oauth-protected-resource/mcp"'
        in challenge
    )
    assert 'scope="tools:read"' in challenge
