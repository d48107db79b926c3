"""The middleware around a real MCP SDK server, driven by the SDK's own client over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.shared.exceptions import MCPError

from resource_server import ResourceServerConfig
from resource_server.demo import DEMO_SCOPES, build_app
from resource_server.mcp import SdkTokenVerifier, sdk_auth_settings
from tests.resource_server.fake_as import RS_CLIENT_ID, RS_CLIENT_SECRET, FakeAS, ServerThread, bound_socket, free_port

pytestmark = pytest.mark.anyio


@dataclass
class Stack:
    fake_as: FakeAS
    resource: str


def _config(fake: FakeAS, resource: str, **overrides: Any) -> ResourceServerConfig:
    values: dict[str, Any] = {
        "resource": resource,
        "issuer": fake.issuer,
        "client_id": RS_CLIENT_ID,
        "client_secret": RS_CLIENT_SECRET,
        "mode": "jwt",
        "scope_policy": DEMO_SCOPES,
    }
    values.update(overrides)
    return ResourceServerConfig(**values)


@pytest.fixture(scope="module")
def as_server() -> Iterator[tuple[FakeAS, Any]]:
    sock = bound_socket()
    fake = FakeAS(f"http://127.0.0.1:{sock.getsockname()[1]}", resource="")
    with ServerThread(fake.app, sock=sock):
        yield fake, sock


def _serve(fake: FakeAS, *, stateless: bool, json_response: bool, mode: str = "jwt") -> Iterator[Stack]:
    sock = bound_socket()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    app = build_app(_config(fake, resource, mode=mode), stateless=stateless, json_response=json_response)
    with ServerThread(app, sock=sock, lifespan="on"):
        yield Stack(fake, resource)


@pytest.fixture(scope="module", params=["stateless-sse", "stateful-sse", "stateless-json"])
def stack(request: pytest.FixtureRequest, as_server: tuple[FakeAS, Any]) -> Iterator[Stack]:
    fake, _ = as_server
    yield from _serve(fake, stateless="stateless" in request.param, json_response="json" in request.param)


@pytest.fixture(scope="module")
def introspection_stack(as_server: tuple[FakeAS, Any]) -> Iterator[Stack]:
    yield from _serve(as_server[0], stateless=True, json_response=False, mode="introspection")


async def _call(stack: Stack, token: str, tool: str, args: dict[str, Any] | None = None) -> Any:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(stack.resource, http_client=http)) as client,
    ):
        return await client.call_tool(tool, args or {})


def _mint(stack: Stack, **claims: Any) -> str:
    return stack.fake_as.mint(aud=stack.resource, **claims)


async def test_identity_inside_a_real_sdk_tool(stack: Stack) -> None:
    token = _mint(stack, agent="agent-7", team="team-a", act={"sub": "agent-7", "act": {"sub": "orchestrator"}})
    result = await _call(stack, token, "whoami")
    assert result.structured_content == {
        "subject": "user-1",
        "client_id": "agent-client",
        "agent": "agent-7",
        "team": "team-a",
        "workflow": None,
        "act": {"sub": "agent-7", "act": {"sub": "orchestrator"}},
        "actors": ["agent-7", "orchestrator"],
        "scopes": ["tools:read"],
        "sdk_subject": "user-1",  # the SDK's get_access_token() sees the same token
        "sdk_client_id": "agent-client",
    }


async def test_tool_scopes_enforced_through_the_sdk_client(stack: Stack) -> None:
    assert (await _call(stack, _mint(stack), "add", {"a": 2, "b": 3})).structured_content == {"result": 5}
    with pytest.raises((MCPError, ExceptionGroup)) as excinfo:
        await _call(stack, _mint(stack, scope="tools:read"), "write_note", {"text": "x"})
    assert excinfo.type is MCPError or excinfo.group_contains(MCPError)
    result = await _call(stack, _mint(stack, scope="tools:admin"), "admin_reset")
    assert result.is_error is False


async def test_raw_challenges_from_the_demo(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin_reset", "arguments": {}}}
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with httpx2.AsyncClient() as http:
        r = await http.post(stack.resource, json=body, headers=headers)
        assert r.status_code == 401
        prm_url = stack.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        bearer, dpop = r.headers.get_list("www-authenticate")
        assert bearer == f'Bearer scope="tools:admin", resource_metadata="{prm_url}"'
        assert dpop.startswith('DPoP algs="')
        prm = (await http.get(prm_url)).json()
        assert prm["resource"] == stack.resource
        assert prm["authorization_servers"] == [stack.fake_as.issuer]
        r = await http.post(stack.resource, json=body, headers={**headers, "authorization": f"Bearer {_mint(stack)}"})
        assert r.status_code == 403
        assert 'scope="tools:admin"' in r.headers["www-authenticate"]


async def test_introspection_mode_with_the_sdk_client(introspection_stack: Stack) -> None:
    fake = introspection_stack.fake_as
    before = fake.introspection_calls
    token = _mint(introspection_stack)
    result = await _call(introspection_stack, token, "whoami")
    assert result.structured_content["subject"] == "user-1"
    assert fake.introspection_calls - before == 1  # several HTTP requests, one introspection
    fake.revoke(token)


async def test_sdk_token_verifier_adapter(as_server: tuple[FakeAS, Any]) -> None:
    """The SDK's own wiring, ``MCPServer(token_verifier=..., auth=...)``, on our verifier."""
    fake, _ = as_server
    sock = bound_socket()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    config = _config(fake, resource)
    verifier = SdkTokenVerifier.from_config(config)
    server = MCPServer("sdk-wired", token_verifier=verifier, auth=sdk_auth_settings(config))

    @server.tool()
    def who() -> str:
        token = get_access_token()
        return token.subject if token is not None and token.subject else "nobody"

    sdk_app = server.streamable_http_app(stateless_http=True)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await sdk_app(scope, receive, send)
            return

        async def closing_receive() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await verifier.aclose()  # in the serving loop, where the client was created
            return message

        await sdk_app(scope, closing_receive, send)

    with ServerThread(app, sock=sock, lifespan="on"):
        stack = Stack(fake, resource)
        result = await _call(stack, _mint(stack), "who")
        assert result.content[0].text == "user-1"
        async with httpx2.AsyncClient() as raw:
            prm = (await raw.get(resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))).json()
            assert prm["authorization_servers"] == [fake.issuer]  # exact string, no trailing slash
            r = await raw.post(resource, json={}, headers={"authorization": "Bearer garbage"})
            assert r.status_code == 401


def test_demo_command_line_runs_without_credentials_in_jwt_mode(as_server: tuple[FakeAS, Any]) -> None:
    fake, _ = as_server
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("RS_CLIENT_SECRET", None)
    cmd = [sys.executable, "-m", "resource_server.demo", "--port", str(port), "--issuer", fake.issuer]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        doc = None
        while doc is None:
            assert proc.poll() is None, "demo exited"
            assert time.monotonic() < deadline, "demo did not start"
            try:
                doc = httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp").json()
            except httpx2.TransportError:
                time.sleep(0.1)
        assert doc["resource"] == f"http://127.0.0.1:{port}/mcp"
        assert doc["authorization_servers"] == [fake.issuer]
        assert doc["scopes_supported"] == ["tools:admin", "tools:read", "tools:write"]
        token = fake.mint(aud=doc["resource"])
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        r = httpx2.post(
            doc["resource"],
            json=body,
            headers={"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"},
        )
        assert r.status_code == 200
        assert "whoami" in r.text
    finally:
        proc.terminate()
        proc.wait(10)
