"""Hypothesis over the resource server middleware: bodies, Authorization headers, query strings and
MCP routing headers a stranger sends; never a 5xx, and the app sees a request only with a valid token."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.test_oauth_hypothesis import JSON, TEXT, TOKENS
from tests.resource_server.conftest import as_client, config, fake_as
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio
__all__ = ["fake_as"]

MESSAGE = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"]), "method": st.one_of(st.sampled_from(["tools/call", "tools/list",
     "resources/read", "initialize"]), TEXT)},
    optional={"id": st.one_of(st.integers(), TEXT, st.none(), JSON), "params": st.one_of(
        st.fixed_dictionaries({"name": st.one_of(st.sampled_from(["add", "write_note"]), TEXT)},
                              optional={"arguments": JSON, "uri": TEXT}), JSON)},
)  # fmt: skip
BODY = st.one_of(
    MESSAGE.map(lambda m: json.dumps(m).encode()),
    st.lists(MESSAGE, max_size=3).map(lambda m: json.dumps(m).encode()),
    st.binary(max_size=64),
    st.integers(1, 3000).map(lambda n: b"[" * n),
)


@settings(max_examples=80, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    mode=st.sampled_from(["jwt", "introspection", "hybrid"]),
    body=BODY,
    authorization=st.one_of(st.none(), TOKENS.map(lambda t: f"Bearer {t}"), TEXT, st.just("valid")),
    query=st.one_of(st.just(""), TEXT.map(lambda q: "?" + q), TOKENS.map(lambda t: f"?access_token={t}")),
    mcp_method=st.one_of(st.none(), TEXT),
    mcp_name=st.one_of(st.none(), TEXT),
)
async def test_middleware_never_fails(
    fake_as: FakeAS, mode: str, body: bytes, authorization: str | None, query: str, mcp_method: str | None,
    mcp_name: str | None,
) -> None:  # fmt: skip
    import httpx2

    from resource_server import ResourceServerMiddleware
    from tests.resource_server.conftest import EchoApp

    app = EchoApp()
    async with as_client(fake_as) as http:
        rs = ResourceServerMiddleware(app, config(mode=mode), http_client=http)
        headers: dict[str, Any] = {"content-type": "application/json"}
        if authorization == "valid":
            authorization = f"Bearer {fake_as.mint()}"
        for name, value in (("authorization", authorization), ("mcp-method", mcp_method), ("mcp-name", mcp_name)):
            if value is not None and value.isprintable() and value.isascii():
                headers[name] = value
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=rs), base_url="http://rs.test") as client:
            r = await client.post("/mcp" + quote(query, safe="?=&"), content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert app.bodies == []  # refused before the app
