"""The AS's CPU per budget lease call: ``POST /api/v1/budgets/reserve`` and ``/settle`` one at a time.

What a resource server's budget hook asks of the AS per lease (docs/performance.md, "the hooks"),
measured without a demo server beside it: ``authz serve --dev`` (1 worker, SQLite ledger, audit as
configured), an agent with a hard ``calls`` budget, an admin client with ``budgets:use``; then
``--calls`` sequential leases (``units`` each), in phases, reading the server's CPU time from
``/proc`` around each phase:

- ``reserve``: one reserve per lease;
- ``settle``: one settle per lease (the leases of the reserve phase, one per POST);
- ``both``: reserve and settle in one POST (``settle`` inside the reserve request), when the server
  supports it (``--no-combined`` skips it).

Prints ``budget_use.<phase>.as_cpu_us`` (the AS's CPU per POST) and the client's wall time per POST.

    python bench/budget_use_cost.py [--calls 300] [--units 64] [--rounds 2] [--profile FILE]

Loopback only; a temporary data dir.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.budget_hook import cpu_seconds, fields  # noqa: E402
from conformance.procs import AuthzServer  # noqa: E402


def admin_token(client: httpx2.Client, issuer: str, client_id: str, secret: str) -> str:
    data = {"grant_type": "client_credentials", "resource": f"{issuer}/api/v1", "scope": "budgets:use"}
    r = client.post(f"{issuer}/token", data=data, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    value: str = r.json()["access_token"]
    return value


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=300, help="leases per phase")
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-combined", action="store_true", help="skip the settle-with-reserve phase")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    data = Path(tempfile.mkdtemp(prefix="authz-bench-use."))
    server = AuthzServer(data / "as", env={"AUTHZ_ACCESS_TOKEN_TTL": "3600"})
    try:
        server.cli("migrate")
        agent = fields(server.cli("agents", "create", "bench agent").stdout)["id"]
        limit = ("--limit", "1000000000", "--period", "day")
        server.cli("budgets", "create", "--agent", agent, "--metric", "calls", *limit)
        rs = fields(server.cli("admin-client", "create", "--name", "bench-rs", "--scopes", "budgets:use").stdout)
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        api = f"{server.issuer}/api/v1"
        with httpx2.Client(timeout=10) as client:
            bearer = admin_token(client, server.issuer, rs["client_id"], rs["client_secret"])
            headers = {"Authorization": f"Bearer {bearer}"}

            def reserve(extra: dict[str, Any] | None = None) -> dict[str, Any]:
                body = {"agent": agent, "request_id": secrets.token_hex(12), "estimate": {"calls": 1},
                        "units": a.units, "ttl": 60, **(extra or {})}  # fmt: skip
                r = client.post(api + "/budgets/reserve", json=body, headers=headers)
                assert r.status_code == 200, r.text
                doc: dict[str, Any] = r.json()
                return doc

            def settle(handle: str) -> None:
                body = {"settlements": [{"reservation_id": handle, "actual": {"calls": a.units - 1}}]}
                r = client.post(api + "/budgets/settle", json=body, headers=headers)
                assert r.status_code == 200 and r.json()["results"][0]["state"] == "settled", r.text

            for _ in range(20):  # warm-up
                settle(reserve()["reservation_id"])
            combined = not a.no_combined
            if combined:
                probe = reserve()["reservation_id"]
                body = {"agent": agent, "request_id": secrets.token_hex(12), "estimate": {"calls": 1}, "units": 1,
                        "settle": [{"reservation_id": probe, "actual": {"calls": 1}}]}  # fmt: skip
                r = client.post(api + "/budgets/reserve", json=body, headers=headers)
                combined = r.status_code == 200 and r.json().get("settled", [{}])[0].get("state") == "settled"
                if not combined:
                    print("# this server does not settle inside a reserve: no 'both' phase")
                    settle(probe)
                else:
                    settle(r.json()["reservation_id"])
            results: dict[str, list[float]] = {"reserve": [], "settle": [], "both": []}
            walls: dict[str, list[float]] = {"reserve": [], "settle": [], "both": []}
            for _ in range(a.rounds):
                cpu0, t0 = cpu_seconds(pid), time.perf_counter()
                handles = [reserve()["reservation_id"] for _ in range(a.calls)]
                cpu1, t1 = cpu_seconds(pid), time.perf_counter()
                for h in handles:
                    settle(h)
                cpu2, t2 = cpu_seconds(pid), time.perf_counter()
                results["reserve"].append((cpu1 - cpu0) / a.calls * 1e6)
                results["settle"].append((cpu2 - cpu1) / a.calls * 1e6)
                walls["reserve"].append((t1 - t0) / a.calls * 1e6)
                walls["settle"].append((t2 - t1) / a.calls * 1e6)
                if combined:
                    prev = reserve()["reservation_id"]
                    cpu3, t3 = cpu_seconds(pid), time.perf_counter()
                    for _ in range(a.calls):
                        prev = reserve({"settle": [{"reservation_id": prev, "actual": {"calls": a.units - 1}}]})[
                            "reservation_id"
                        ]
                    cpu4, t4 = cpu_seconds(pid), time.perf_counter()
                    settle(prev)
                    results["both"].append((cpu4 - cpu3) / a.calls * 1e6)
                    walls["both"].append((t4 - t3) / a.calls * 1e6)
                print(
                    "# round: AS CPU µs per POST "
                    + " ".join(f"{k}={v[-1]:.0f}" for k, v in results.items() if v)
                    + f"; load {os.getloadavg()[0]:.2f}"
                )
        for k, v in results.items():
            if v:
                print(f"budget_use.{k}.as_cpu_us {min(v):.0f}")
                print(f"budget_use.{k}.wall_us {min(walls[k]):.0f}")
        return 0
    finally:
        server.stop()
        if not a.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
