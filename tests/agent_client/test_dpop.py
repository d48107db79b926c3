"""``agent_client`` with DPoP: bound tokens from a real in-process AS, presented to a real middleware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent_client import ClientSecret, DpopAuth, DpopSession, TokenSource
from resource_server import ResourceServerConfig, ResourceServerMiddleware, ScopePolicy, current_token
from tests.agent_client.test_token_source import claims_of
from tests.authz.conftest import AS, ISSUER, RESOURCE, ASFactory

pytestmark = pytest.mark.anyio


async def _echo(request: Request) -> JSONResponse:
    token = current_token()
    return JSONResponse({"sub": token.subject, "jkt": dict(token.claims).get("cnf", {}).get("jkt")})


def protected(authz: AS, **config: Any) -> ResourceServerMiddleware:
    """The resource-server middleware in front of a tiny app, validating with the in-process AS's JWKS."""
    app = Starlette(routes=[Route("/mcp", _echo, methods=["POST", "GET"])])
    cfg = ResourceServerConfig(
        resource=RESOURCE, issuer=ISSUER, mode="jwt", scope_policy=ScopePolicy.build(default=["tools:read"]), **config
    )
    as_http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=authz.app), base_url=ISSUER)
    return ResourceServerMiddleware(app, cfg, http_client=as_http)


async def source(authz: AS, session: DpopSession, **kw: Any) -> TokenSource:
    reg = authz.machine_client(**kw)
    assert reg.client_secret is not None
    return await TokenSource.for_issuer(
        ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret), http=authz.http, dpop=session
    )


@pytest.mark.requirement("rfc9449:client-proofs")
async def test_agent_gets_a_bound_token_and_presents_it_with_fresh_proofs(authz: AS) -> None:
    session = DpopSession()
    src = await source(authz, session)
    token = await src.current()
    assert token.token_type == "DPoP" and claims_of(token.access_token)["cnf"]["jkt"] == session.jkt
    rs = protected(authz)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=rs), base_url="http://127.0.0.1:9200",
                                  auth=DpopAuth(src)) as http:  # fmt: skip
        for _ in range(3):  # each request a new proof (the middleware refuses a replayed jti)
            r = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert r.status_code == 200, r.text
            assert r.json()["jkt"] == session.jkt
    assert src.requests == 1


@pytest.mark.requirement("rfc9449:client-proofs")
async def test_agent_retries_with_the_servers_nonces(as_factory: ASFactory) -> None:
    authz = await as_factory(dev_mode=True, dpop_nonce=True)
    session = DpopSession()
    src = await source(authz, session)
    token = await src.current()
    assert token.token_type == "DPoP"
    assert src.requests == 2  # the use_dpop_nonce answer, then the retry with the nonce
    rs = protected(authz, dpop_nonce=True, dpop_nonce_key=b"r" * 32)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=rs), base_url="http://127.0.0.1:9200",
                                  auth=DpopAuth(src)) as http:  # fmt: skip
        first = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert first.status_code == 200, first.text
        second = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        assert second.status_code == 200  # the remembered nonce: no extra round trip needed
    assert src.requests == 2


async def test_a_dpop_bound_client_without_dpop_is_refused_and_with_it_works(authz: AS) -> None:
    reg = authz.machine_client(extra={"dpop_bound_access_tokens": True})
    assert reg.client_secret is not None
    plain = await TokenSource.for_issuer(
        ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret), http=authz.http
    )
    with pytest.raises(Exception, match="invalid_dpop_proof"):
        await plain.token()
    bound = await TokenSource.for_issuer(
        ISSUER, RESOURCE, ClientSecret(reg.client_id, reg.client_secret), http=authz.http, dpop=DpopSession()
    )
    assert (await bound.current()).token_type == "DPoP"


def test_the_session_key_persists_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    first = DpopSession.from_file(path)
    assert DpopSession.from_file(path).jkt == first.jkt
    assert json.loads(path.read_text())["kty"] == "EC"
