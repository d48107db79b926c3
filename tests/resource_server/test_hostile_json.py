"""Deeply nested JSON at the resource server: a JSON-RPC parse error, or 401 for a token, never 500.

The middleware parses the JSON-RPC body before the token check (the operation decides which scopes a
challenge names); 15,000 ``[`` made ``json.loads`` raise ``RecursionError`` there.
"""

from __future__ import annotations

import base64

import pytest

from resource_server.errors import PARSE_ERROR
from resource_server.scopes import RPC_MAX_DEPTH as MAX_DEPTH
from tests.resource_server.fake_as import FakeAS

pytestmark = pytest.mark.anyio

DEEP = b"[" * 15_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("mode", ["jwt", "introspection", "hybrid"])
@pytest.mark.parametrize("with_token", [False, True], ids=["anonymous", "valid-token"])
async def test_deep_body_is_a_json_rpc_parse_error_before_the_token_check(
    make_harness, fake_as: FakeAS, mode: str, with_token: bool
) -> None:
    h = make_harness(mode=mode)
    too_deep = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH  # params at depth 2: the message nests MAX_DEPTH + 1
    for body in (DEEP, b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + too_deep + b"}"):
        r = await h.call(fake_as.mint() if with_token else None, body)
        assert r.status_code == 400, r.text
        doc = r.json()
        assert doc["jsonrpc"] == "2.0" and doc["id"] is None and doc["error"]["code"] == PARSE_ERROR
        assert "www-authenticate" not in r.headers
    assert h.app.bodies == []  # the app never saw it


async def test_arguments_nested_within_the_limit_reach_the_app(make_harness, fake_as: FakeAS) -> None:
    h = make_harness()
    arguments: object = 1
    for _ in range(MAX_DEPTH - 4):
        arguments = {"a": arguments}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": arguments}}
    r = await h.call(fake_as.mint(), body)
    assert r.status_code == 200, r.text
    assert len(h.app.bodies) == 1


@pytest.mark.parametrize("mode", ["jwt", "hybrid", "introspection"])
async def test_a_token_with_a_deeply_nested_header_is_401(make_harness, fake_as: FakeAS, mode: str) -> None:
    h = make_harness(mode=mode)
    token = ".".join([_b64(b'{"a":' + DEEP), _b64(b"{}"), _b64(b"sig")])
    r = await h.call(token)
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert h.app.bodies == []
