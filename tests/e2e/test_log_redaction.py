"""No server of ours logs a credential sent in a query string (RFC 6750 §5.3, RFC 6819 §5.1.4.1.3).

The demo MCP server's uvicorn access log wrote a live token sent as ``?access_token=`` (refused, but
logged in full). Both servers we start run uvicorn with a filter that redacts credential parameters;
these tests send one to real processes and grep what they wrote.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx2
import pytest

from tests.e2e._processes import Processes, base_env, processes, wait_http

pytestmark = pytest.mark.e2e
__all__ = ["processes"]


def test_the_demo_mcp_server_access_log_redacts_a_query_token(processes: Processes, free_port: Any) -> None:
    port = free_port()
    proc = processes.start(
        "demo-mcp",
        ["-m", "resource_server.demo", "--port", str(port), "--issuer", "http://127.0.0.1:9", "--mode", "jwt"],
        base_env(),
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/.well-known/oauth-protected-resource/mcp", proc)
    token = "eyJ" + secrets.token_urlsafe(24)
    for method in ("GET", "POST"):
        r = httpx2.request(method, f"{base}/mcp?x=1&access_token={token}&Access%5FToken={token}", json={}, timeout=10)
        assert r.status_code == 400, r.text
    proc.stop()
    log = proc.log()
    assert token not in log
    assert log.count("access_token=[redacted]") == 2 and log.count("Access%5FToken=[redacted]") == 2, log
    assert '"GET /mcp?x=1&' in log  # the request line is still there, only the credential is gone


def test_authz_serve_access_log_redacts_credentials(authz_server_factory: Any) -> None:
    server = authz_server_factory(serve_args=["--access-log"])
    secret = secrets.token_urlsafe(24)
    r = httpx2.get(
        f"{server.url}/authorize",
        params={"client_id": "nobody", "state": "s", "code": secret, "client_secret": secret, "token": secret},
        timeout=10,
    )
    assert r.status_code == 400
    r = httpx2.post(f"{server.url}/token?client_secret={secret}", data={"grant_type": "client_credentials"}, timeout=10)
    assert r.status_code in (400, 401)
    server.stop()
    log = server.log()
    assert secret not in log
    assert "code=[redacted]" in log and "client_secret=[redacted]" in log and "token=[redacted]" in log
    assert "client_id=nobody" in log and "state=s" in log
