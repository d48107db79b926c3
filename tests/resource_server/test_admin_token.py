"""``AdminApiToken``: discovered token endpoint, checked issuer, one request for concurrent callers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from resource_server.admin_token import AdminApiToken, AdminTokenError

pytestmark = pytest.mark.anyio
ISSUER = "http://as.test"


class AS:
    def __init__(self, issuer: str = ISSUER, status: int = 200) -> None:
        self.issuer, self.status = issuer, status
        self.posts: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/oauth-authorization-server":
            return httpx2.Response(200, json={"issuer": self.issuer, "token_endpoint": ISSUER + "/oauth/token"})
        assert request.url.path == "/oauth/token"  # the endpoint the metadata names, not a guess
        self.posts.append(dict(x.split("=", 1) for x in request.content.decode().split("&")))
        body: dict[str, Any] = {"access_token": f"t{len(self.posts)}", "expires_in": 300}
        return httpx2.Response(self.status, json=body if self.status == 200 else {"error": "invalid_client"})


def token(stub: AS) -> AdminApiToken:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(stub))
    return AdminApiToken(http, ISSUER, "rs", "s3cret-value", "budgets:use")


async def test_concurrent_callers_share_one_request_and_forget_renews() -> None:
    stub = AS()
    t = token(stub)
    assert await asyncio.gather(*(t.get() for _ in range(10))) == ["t1"] * 10
    assert len(stub.posts) == 1
    assert stub.posts[0]["resource"] == "http%3A%2F%2Fas.test%2Fapi%2Fv1" and stub.posts[0]["scope"] == "budgets%3Ause"
    t.forget()
    assert await t.get() == "t2"


async def test_another_issuer_or_a_refusal_is_an_error_without_the_secret() -> None:
    with pytest.raises(AdminTokenError, match="another issuer"):
        await token(AS(issuer="http://evil.test")).get()
    with pytest.raises(AdminTokenError, match="refused \\(401\\)") as refused:
        await token(AS(status=401)).get()
    assert "s3cret-value" not in str(refused.value)
