"""``authz serve --server granian`` behaves as the uvicorn default does where the server matters:
lifespan (the app's startup and the audit writer's final flush at shutdown), graceful shutdown on
SIGTERM and SIGINT, ``--workers``, proxy headers from a trusted proxy only, the access log off by
default and redacted when on. Real processes on loopback, read from outside (the audit log, the
process table, the log file)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from typing import Any

import httpx2
import pytest

from conformance.procs import AuthzServer
from tests.e2e._processes import add_client, add_resource, child_pids, jwt_parts, pid_alive, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]  # up to two server starts each, on a loaded machine

RESOURCE = "http://127.0.0.1:9500/mcp"


def registered(factory: Any, *serve_args: str, env: dict[str, str] | None = None) -> tuple[AuthzServer, str, str]:
    """A started server with a resource and a client_credentials client: (server, client_id, secret)."""
    server: AuthzServer = factory(start=False, serve_args=list(serve_args), env=env)
    server.cli("migrate")
    add_resource(server, RESOURCE, "tools:read")
    client_id, secret = add_client(server, "--client-id", "svc", "--grant-type", "client_credentials")
    assert secret
    return server.start(), client_id, secret


def token_jti(server: AuthzServer, client_id: str, secret: str) -> str:
    r = httpx2.post(
        f"{server.url}/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE, "scope": "tools:read"},
        auth=(client_id, secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    jti: str = jwt_parts(r.json()["access_token"])[1]["jti"]
    return jti


def audit_records(server: AuthzServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.cli("audit", "list", "--limit", "1000").stdout.splitlines()]


@pytest.mark.parametrize(
    ("workers", "sig", "group"),
    [(2, signal.SIGTERM, False), (1, signal.SIGINT, True)],
    ids=["sigterm-2-workers", "sigint-group-1-worker"],
)
def test_granian_stops_gracefully_and_flushes_the_audit(
    authz_server_factory: Any, workers: int, sig: signal.Signals, group: bool
) -> None:
    """SIGTERM to the server (as ``kill PID``), or SIGINT to its process group (Ctrl-C): every worker
    runs the app's lifespan shutdown, so the audit records of the tokens just issued (written in
    0.2 s batches) are in the database when the process has exited, and no worker is left."""
    server, client_id, secret = registered(authz_server_factory, "--server", "granian", "--workers", str(workers))
    assert server.proc is not None
    pid = server.proc.pid
    wait_until(lambda: len(child_pids(pid)) >= workers, f"{workers} granian worker(s)", 30)
    workers_pids = list(child_pids(pid))
    jtis = [token_jti(server, client_id, secret) for _ in range(4)]

    if group:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)
    server.proc.wait(timeout=30)
    assert server.proc.returncode == 0, server.log()
    # the workers are gone with it (multiprocessing's resource tracker follows once its pipe closes)
    wait_until(lambda: not [p for p in workers_pids if pid_alive(p)], "the workers to exit", 30)
    log = server.log()
    assert "server: granian" in log and "Granian shutdown completed" in log, log

    issued = {r["detail"].get("jti") for r in audit_records(server) if r["event"] == "token.issued"}
    assert set(jtis) <= issued, (jtis, issued)


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_proxy_headers_are_trusted_only_when_configured(authz_server_factory: Any, server_name: str) -> None:
    """With AUTHZ_TRUST_FORWARDED_PROTO the X-Forwarded-For of a trusted proxy (loopback, the
    FORWARDED_ALLOW_IPS default) is the client address the server records (the audit record keeps
    it pseudonymised; the pseudonym table maps it back); without it, the connection's address is.
    Both servers, the same rule (uvicorn's ProxyHeadersMiddleware)."""

    def refused_ip(server: AuthzServer) -> str:
        r = httpx2.post(
            f"{server.url}/token",
            data={"grant_type": "client_credentials", "resource": RESOURCE},
            auth=("svc", "wrong-secret"),
            headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
            timeout=10,
        )
        assert r.status_code == 401, r.text
        found: list[str] = []

        def audited() -> bool:
            found[:] = [
                str(r["detail"].get("ip"))
                for r in audit_records(server)
                if r["event"] == "token.refused" and r["detail"].get("ip")
            ]
            return bool(found)

        wait_until(audited, "the refusal's audit record", 30)
        with sqlite3.connect(server.data_dir / "authz.db") as db:  # the address behind the record's pseudonym
            row = db.execute("SELECT subject FROM subject_pseudonyms WHERE pseudonym = ?", (found[-1],)).fetchone()
        return str(row[0])

    trusted, _, _ = registered(authz_server_factory, "--server", server_name, env={"AUTHZ_TRUST_FORWARDED_PROTO": "1"})
    assert refused_ip(trusted) == "203.0.113.7"
    plain, _, _ = registered(authz_server_factory, "--server", server_name)
    assert refused_ip(plain) == "127.0.0.1"


def test_granian_access_log_is_off_by_default_and_redacted_when_on(authz_server_factory: Any) -> None:
    quiet, _, _ = registered(authz_server_factory, "--server", "granian")
    httpx2.get(f"{quiet.url}/authorize", params={"client_id": "nobody", "code": "c0de"}, timeout=10)
    quiet.stop()
    assert "GET /authorize" not in quiet.log()

    server, _, _ = registered(authz_server_factory, "--server", "granian", "--access-log")
    secret = "s3cret-value-that-must-not-be-logged"
    r = httpx2.get(f"{server.url}/authorize", params={"client_id": "nobody", "code": secret}, timeout=10)
    assert r.status_code == 400
    server.stop()
    log = server.log()
    assert secret not in log
    assert '"GET /authorize?client_id=nobody&code=[redacted] HTTP/1.1" 400' in log, log
