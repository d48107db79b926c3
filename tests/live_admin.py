"""One real ``authz serve`` (SQLite) for the SDK suites: an admin API token with every admin scope, a
registered resource and a local user (for the data-subject calls). Used by the Python and the
TypeScript SDK tests, which both call every admin operation against it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from conformance.procs import AuthzServer
from tests.e2e._processes import parse_fields

SCOPES = "admin:read admin:write metering:read metering:write budgets:use subjects:admin approvals:check"
FAST = {"AUTHZ_CACHE_STALENESS": "0.1", "AUTHZ_METERING_FLUSH_INTERVAL_S": "0.2", "AUTHZ_POLICIES": "db"}


@dataclass
class Live:
    server: AuthzServer
    token: str
    user_id: str  # a local user (for the data-subject calls)

    @property
    def issuer(self) -> str:
        return self.server.issuer


@contextmanager
def live_admin_server(data_dir: Path, *, resource: str, client_name: str, username: str) -> Iterator[Live]:
    """Start the server with ``resource`` registered; yield it with an admin token; stop it."""
    server = AuthzServer(data_dir, env=dict(FAST))
    server.cli("migrate")
    server.cli("resources", "add", resource, "--scopes", "tools:read")
    admin = parse_fields(server.cli("admin-client", "create", "--name", client_name, "--scopes", SCOPES).stdout)
    added = subprocess.run(
        [sys.executable, "-m", "authz", "users", "add", "--password-stdin", username],
        input="correct horse battery staple\n", env=server.env, cwd=server.data_dir, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
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
