"""Fixtures of ``tests/agent_client``: the in-process AS of ``tests/authz`` (``as_factory``, ``authz``), and
``live``: one real ``authz serve`` subprocess with an admin API token holding every admin scope."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from conformance.procs import AuthzServer
from tests.authz.conftest import anyio_backend, as_factory, authz
from tests.e2e._processes import parse_fields

__all__ = ["RESOURCE", "Live", "anyio_backend", "as_factory", "authz", "live"]

SCOPES = "admin:read admin:write metering:read metering:write budgets:use subjects:admin approvals:check"
RESOURCE = "https://mcp.sdk.example/mcp"  # a registered resource (the oversight rules name one)


@dataclass
class Live:
    server: AuthzServer
    token: str
    user_id: str  # a local user (for the data-subject calls)

    @property
    def issuer(self) -> str:
        return self.server.issuer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A running server (SQLite) and an admin API access token with every admin scope."""
    server = AuthzServer(
        Path(tmp_path_factory.mktemp("sdk")),
        env={"AUTHZ_CACHE_STALENESS": "0.1", "AUTHZ_METERING_FLUSH_INTERVAL_S": "0.2", "AUTHZ_POLICIES": "db"},
    )
    server.cli("migrate")
    admin = parse_fields(server.cli("admin-client", "create", "--name", "sdk-test", "--scopes", SCOPES).stdout)
    added = subprocess.run(
        [sys.executable, "-m", "authz", "users", "add", "--password-stdin", "sdk-subject"],
        input="correct horse battery staple\n", env=server.env, cwd=server.data_dir, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    server.cli("resources", "add", RESOURCE, "--scopes", "tools:read")
    server.start()
    try:
        r = httpx2.post(
            f"{server.issuer}/token",
            data={"grant_type": "client_credentials", "resource": f"{server.issuer}/api/v1", "scope": SCOPES},
            auth=(admin["client_id"], admin["client_secret"]),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        yield Live(server, str(r.json()["access_token"]), added.stdout.split("(")[1].split(")")[0])
    finally:
        server.stop()
