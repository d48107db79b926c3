"""``agent_client.TokenSource`` and ``BearerAuth`` against a real in-process authorization server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from joserfc.jwk import ECKey

from agent_client import (
    BearerAuth,
    ClientSecret,
    DiscoveryError,
    PrivateKeyJwt,
    TokenError,
    TokenExchange,
    TokenSource,
    discover,
    discover_resource,
)
from tests.authz.conftest import AS, ISSUER, RESOURCE

pytestmark = pytest.mark.anyio
TE = "urn:ietf:params:oauth:grant-type:token-exchange"


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


class Counting:
    """An ASGI-backed httpx2 client that counts the requests it sends, by path."""

    def __init__(self, authz: AS) -> None:
        self.paths: list[str] = []
        self.http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=authz.app),
            base_url=ISSUER,
            event_hooks={"request": [self._count]},
        )

    async def _count(self, request: httpx2.Request) -> None:
        self.paths.append(request.url.path)

    @property
    def token_requests(self) -> int:
        return self.paths.count("/token")


@pytest.fixture
async def counting(authz: AS) -> AsyncIterator[Counting]:
    c = Counting(authz)
    yield c
    await c.http.aclose()


async def test_client_secret_token_is_cached(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client()
    assert reg.client_secret is not None
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret),
                                          http=counting.http, scope="tools:read")  # fmt: skip
    first = await source.token()
    claims = claims_of(first)
    assert claims["aud"] == RESOURCE and claims["sub"] == "agent-1" and claims["scope"] == "tools:read"
    assert await source.token() == first
    assert counting.token_requests == 1 and source.requests == 1


async def test_client_secret_post(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client(auth_method="client_secret_post")
    assert reg.client_secret is not None
    cred = ClientSecret(reg.client_id, reg.client_secret, method="client_secret_post")
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, cred, http=counting.http)
    assert claims_of(await source.token())["client_id"] == reg.client_id


@pytest.mark.parametrize("as_pem", [False, True])
async def test_private_key_jwt(authz: AS, counting: Counting, as_pem: bool) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    authz.machine_client("agent-pk", auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]})
    secret: Any = key.as_pem(private=True).decode() if as_pem else key
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, PrivateKeyJwt("agent-pk", secret), http=counting.http)
    assert claims_of(await source.token())["sub"] == "agent-pk"
    source.invalidate()
    assert claims_of(await source.token())["sub"] == "agent-pk"  # a fresh assertion (new jti) each time
    assert counting.token_requests == 2


async def test_refreshes_before_expiry(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client()
    assert reg.client_secret is not None
    now = [1000.0]
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret),
                                          http=counting.http, skew=60, clock=lambda: now[0])  # fmt: skip
    await source.token()
    now[0] += 200  # 300 s tokens, 60 s skew: still fresh at +200
    await source.token()
    assert counting.token_requests == 1
    now[0] += 45  # +245 > 300 - 60: refreshed
    await source.token()
    assert counting.token_requests == 2


async def test_a_skew_larger_than_the_lifetime_refreshes_every_time(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client()
    assert reg.client_secret is not None
    cred = ClientSecret(reg.client_id, reg.client_secret)
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, cred, http=counting.http, skew=3600)
    await source.token()
    await source.token()
    assert counting.token_requests == 2


async def test_concurrent_callers_share_one_request(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client()
    assert reg.client_secret is not None
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret),
                                          http=counting.http)  # fmt: skip
    tokens = await asyncio.gather(*(source.token() for _ in range(20)))
    assert len(set(tokens)) == 1 and counting.token_requests == 1


async def test_refusal_is_a_token_error(authz: AS, counting: Counting) -> None:
    reg = authz.machine_client()
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, ClientSecret(reg.client_id, "wrong"), http=counting.http)
    with pytest.raises(TokenError) as info:
        await source.token()
    assert info.value.error == "invalid_client" and info.value.status == 401


async def test_exchanges_a_users_token(authz: AS, counting: Counting) -> None:
    authz.public_client()
    user, _ = await authz.code_flow("public-app", scope="tools:read tools:write")
    reg = authz.machine_client("agent-x", grant_types=["client_credentials", TE])
    assert reg.client_secret is not None
    source = await TokenSource.for_issuer(
        ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret), http=counting.http,
        grant=TokenExchange(user["access_token"], workflow="wf-1"), scope="tools:read",
    )  # fmt: skip
    claims = claims_of(await source.token())
    assert claims["sub"] == claims_of(user["access_token"])["sub"]
    assert claims["act"]["sub"] == "agent-x" and claims["workflow"] == "wf-1" and claims["scope"] == "tools:read"


# -- BearerAuth ---------------------------------------------------------------------------------
class FakeSource(TokenSource):
    """A TokenSource that mints "t1", "t2", ... without a server."""

    def __init__(self) -> None:
        self.n = 0
        self.current: str | None = None

    async def token(self) -> str:
        if self.current is None:
            self.n += 1
            self.current = f"t{self.n}"
        return self.current

    def invalidate(self, access_token: str | None = None) -> None:
        if access_token is None or access_token == self.current:
            self.current = None


async def test_bearer_auth_retries_once_with_a_new_token_on_401() -> None:
    seen: list[tuple[str, bytes]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.headers["authorization"], request.content))
        return httpx2.Response(401 if request.headers["authorization"] == "Bearer t1" else 200)

    source = FakeSource()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=BearerAuth(source)) as http:
        r = await http.post("http://rs.test/mcp", json={"jsonrpc": "2.0"})
        assert r.status_code == 200
        assert [a for a, _ in seen] == ["Bearer t1", "Bearer t2"]
        assert seen[0][1] == seen[1][1] != b""  # the body is replayed
        await http.get("http://rs.test/mcp")
        assert seen[-1][0] == "Bearer t2"  # cached


async def test_bearer_auth_gives_up_after_one_retry() -> None:
    calls: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.headers["authorization"])
        return httpx2.Response(401)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=BearerAuth(FakeSource())) as http:
        assert (await http.get("http://rs.test/mcp")).status_code == 401
    assert calls == ["Bearer t1", "Bearer t2"]


async def test_bearer_auth_against_the_real_server(authz: AS, counting: Counting) -> None:
    """A token the server revoked gets a 401 from introspection-like checks; BearerAuth then refetches."""
    reg = authz.machine_client()
    assert reg.client_secret is not None
    source = await TokenSource.for_issuer(ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret),
                                          http=counting.http)  # fmt: skip
    revoked = await source.token()
    jti = claims_of(revoked)["jti"]
    authz.ctx.revocations.revoke("jti", jti, claims_of(revoked)["exp"])

    async def rs(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        info = await authz.introspect(token)
        return httpx2.Response(200 if info["active"] else 401)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(rs), auth=BearerAuth(source)) as http:
        assert (await http.get("http://rs.test/mcp")).status_code == 200
    assert counting.token_requests == 2


# -- discovery ----------------------------------------------------------------------------------
async def test_discovery_requires_the_exact_issuer() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"issuer": "https://as.example.com/", "token_endpoint": "https://x/token"})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        with pytest.raises(DiscoveryError):
            await discover(http, "https://as.example.com")


async def test_discovery_inserts_the_issuer_path() -> None:
    asked: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append(str(request.url))
        if request.url.path == "/.well-known/oauth-authorization-server/t1":
            return httpx2.Response(200, json={"issuer": "https://as.example.com/t1", "token_endpoint": "https://t"})
        return httpx2.Response(404)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        server = await discover(http, "https://as.example.com/t1")
    assert server.token_endpoint == "https://t" and asked == [
        "https://as.example.com/.well-known/oauth-authorization-server/t1"
    ]


async def test_resource_discovery_path_inserted_then_root() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/oauth-protected-resource":
            return httpx2.Response(
                200, json={"resource": "https://rs.example.com", "authorization_servers": ["https://as"]}
            )
        return httpx2.Response(404)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        prm = await discover_resource(http, "https://rs.example.com/mcp")
        assert prm.resource == "https://rs.example.com" and prm.authorization_servers == ("https://as",)
        with pytest.raises(DiscoveryError):
            await discover_resource(http, "https://other.example.com/mcp")
