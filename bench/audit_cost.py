"""What the audit Merkle tree costs token issuance: two `authz serve`, tree on and tree off, same run.

Each server has its own data directory (SQLite, the embedded default, or AUTHZ_BENCH_DATABASE_URL_ON /
_OFF), the same resource and client. Rounds alternate (off, on, off, on, ...) so machine load hits
both alike; each round is one wrk run of client_credentials issuance (client_secret_basic). Prints
"audit_tree.<on|off>.rps <median>", the ratio, and the rows each server wrote (records, tree nodes).

    .venv/bin/python bench/audit_cost.py            # ROUNDS=3 DURATION=10 CONNS=32 THREADS=2
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PY = sys.executable
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNS = int(os.environ.get("CONNS", "32"))
THREADS = int(os.environ.get("THREADS", "2"))
PORT = int(os.environ.get("AUTHZ_BENCH_PORT", "9160"))
RESOURCE = "http://127.0.0.1:9500/mcp"


def authz(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "authz", *args], env=env, capture_output=True, text=True, check=True).stdout


def start(tree: bool, port: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    data = tempfile.mkdtemp(prefix=f"authz-audit-{'on' if tree else 'off'}.")
    env = {**os.environ, "AUTHZ_ISSUER": f"http://127.0.0.1:{port}", "AUTHZ_DATA_DIR": data,
           "AUTHZ_AUDIT_TREE": "true" if tree else "false"}  # fmt: skip
    authz(env, "resources", "add", RESOURCE, "--scopes", "tools:read", "--name", "bench")
    out = authz(env, "clients", "add", "--client-id", "bench-client", "--grant-type", "client_credentials")
    secret = re.search(r"client_secret:\s*(\S+)", out)
    assert secret, out
    server = subprocess.Popen(
        [PY, "-m", "authz", "serve", "--port", str(port), "--no-migrate", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(f"{data}/server.log", "w"),
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return server, data, {"secret": secret.group(1)}


def wrk(port: int, secret: str, lua_dir: str) -> float:
    basic = base64.b64encode(f"bench-client:{secret}".encode()).decode()
    lua = Path(lua_dir) / f"cc-{port}.lua"
    lua.write_text(
        "wrk.method = 'POST'\n"
        f"wrk.body = 'grant_type=client_credentials&resource={RESOURCE}&scope=tools%3Aread'\n"
        "wrk.headers['Content-Type'] = 'application/x-www-form-urlencoded'\n"
        f"wrk.headers['Authorization'] = 'Basic {basic}'\n"
    )
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{DURATION}s", "-s", str(lua), f"http://127.0.0.1:{port}/token"],
        capture_output=True, text=True, check=True, timeout=DURATION + 60,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps and "Non-2xx" not in out, out
    return float(rps.group(1))


def rows(data: str) -> tuple[int, int]:
    db = sqlite3.connect(f"{data}/authz.db")
    try:
        records = db.execute("SELECT count(*) FROM audit_events").fetchone()[0]
        nodes = db.execute("SELECT count(*) FROM audit_tree_nodes").fetchone()[0]
    finally:
        db.close()
    return int(records), int(nodes)


def main() -> None:
    servers = {False: start(False, PORT), True: start(True, PORT + 1)}
    ports = {False: PORT, True: PORT + 1}
    rps: dict[bool, list[float]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory() as lua_dir:
            for tree in (False, True):  # warm-up round, not counted
                wrk(ports[tree], servers[tree][2]["secret"], lua_dir)
            for _ in range(ROUNDS):
                for tree in (False, True):
                    rps[tree].append(wrk(ports[tree], servers[tree][2]["secret"], lua_dir))
                    print(f"# round: tree {'on ' if tree else 'off'} {rps[tree][-1]:.0f} req/s", file=sys.stderr)
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    on, off = statistics.median(rps[True]), statistics.median(rps[False])
    print(f"audit_tree.off.rps {off:.0f}")
    print(f"audit_tree.on.rps {on:.0f}")
    print(f"audit_tree.on_over_off {on / off:.3f}")
    print(f"audit_tree.cost_percent {100 * (1 - on / off):.1f}")
    for tree in (False, True):
        records, nodes = rows(servers[tree][1])
        print(f"audit_tree.{'on' if tree else 'off'}.records {records} nodes {nodes}")


if __name__ == "__main__":
    main()
