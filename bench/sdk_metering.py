"""The Python SDK's metering batcher into a live ``authz serve``: events/s from one process.

    python bench/sdk_metering.py [--events 100000] [--batch 1000] [--concurrency 2] [--workers 1] [--redis URL]
                                [--runs 3]

Starts ``authz serve`` on a scratch SQLite database (with ``--redis``, metering is buffered in that
Redis), gets an admin API token, then records ``--events`` ``call.completed`` events through
``MeteringBatcher`` from this one process and times until the last batch is acknowledged (stored by
the server, not merely queued). Prints ``sdk_metering.<backend>.eps N`` per run, the client's CPU
seconds (``client_cpu_eps``: events per CPU second of this process, the rate one free core
sustains), the server's CPU seconds (all its processes, from ``/proc``), the server's usage count
of the run's agent (each event counted once) and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # conformance/ and tests/ when run as a script

from agent_client.sdk import Client
from agent_client.sdk.batcher import MeteringBatcher
from conformance.procs import AuthzServer
from tests.e2e._processes import parse_fields

SCOPES = "metering:read metering:write"


def token(server: AuthzServer, admin: dict[str, str]) -> str:
    r = httpx2.post(
        f"{server.issuer}/token",
        data={"grant_type": "client_credentials", "resource": f"{server.issuer}/api/v1", "scope": SCOPES},
        auth=(admin["client_id"], admin["client_secret"]),
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its child processes (``/proc``; Linux)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if root in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def counted(client: Client, agent: str, expected: int, wait: float = 60.0) -> int:
    deadline, total = time.monotonic() + wait, 0
    while time.monotonic() < deadline:
        rows = client.metering.usage(granularity="day", group_by="agent", filters={"agent": agent})["rows"]
        total = sum(int(r["count"]) for r in rows)
        if total >= expected:
            break
        time.sleep(0.5)
    return total


def run(client: Client, events: int, batch: int, concurrency: int, server_pid: int) -> tuple[float, float, float, str]:
    agent = f"agt_bench_{uuid.uuid4().hex[:8]}"
    server0, cpu0, t0 = cpu_seconds(server_pid), time.process_time(), time.perf_counter()
    batcher = MeteringBatcher(client, max_batch=batch, concurrency=concurrency, flush_interval=0.05)
    for i in range(events):
        batcher.record("call.completed", agent=agent, tool=f"tool_{i % 20}")
    if not batcher.close(timeout=600):
        raise SystemExit("the batcher could not send everything")
    wall, cpu, server_cpu = time.perf_counter() - t0, time.process_time() - cpu0, cpu_seconds(server_pid) - server0
    s = batcher.stats
    if s.sent != events or s.rejected or s.failed:
        raise SystemExit(f"unexpected stats: {s}")
    return events / wall, cpu, server_cpu, agent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="authz serve --workers")
    ap.add_argument("--redis", default="", help="a Redis URL: buffer metering there (AUTHZ_REDIS_URL)")
    args = ap.parse_args()
    backend = "redis" if args.redis else "sqlite"
    env = {"AUTHZ_METERING_FLUSH_INTERVAL_S": "1"} | ({"AUTHZ_REDIS_URL": args.redis} if args.redis else {})
    with tempfile.TemporaryDirectory() as tmp:
        server = AuthzServer(Path(tmp), env=env, serve_args=["--workers", str(args.workers)])
        server.cli("migrate")
        admin = parse_fields(server.cli("admin-client", "create", "--name", "bench", "--scopes", SCOPES).stdout)
        server.start()
        try:
            bearer = token(server, admin)
            with Client(server.issuer, api_key=bearer, timeout=60) as client:
                for _ in range(args.runs):
                    assert server.proc is not None
                    eps, cpu, server_cpu, agent = run(
                        client, args.events, args.batch, args.concurrency, server.proc.pid
                    )
                    n = args.events
                    print(f"sdk_metering.{backend}.eps {eps:,.0f} (wall clock, shared cores)")
                    print(f"sdk_metering.{backend}.client_cpu_eps {n / cpu:,.0f} ({cpu:.2f} s CPU for {n:,} events)")
                    print(f"sdk_metering.{backend}.server_cpu_eps {n / server_cpu:,.0f} ({server_cpu:.2f} s CPU)")
                    print(f"sdk_metering.{backend}.counted {counted(client, agent, args.events):,}")
        finally:
            server.stop()
    print("loadavg", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
