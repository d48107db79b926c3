"""Delay from an agent's suspension (admin API) to the first 401 at MCP servers that consume the SSF stream.

Everything on 127.0.0.1, real processes, a temporary data dir:

- ``authz serve`` (1 worker, SQLite) with two registered MCP servers and an admin client (``admin:write``);
- two demo MCP servers (``python -m resource_server.demo``) with their resource server credentials, so both
  consume the AS's Shared Signals stream (RFC 8936 long poll): one in ``jwt`` mode (no per-request AS
  traffic: without the stream it would accept the token until it expires) and one in ``hybrid`` mode
  (without the stream: until its 5 s revocation cache bound).

Each trial: create an agent and a secret (admin API), get a token for each server, call a tool with it
until both servers have it cached (3 calls each, all 200), then, at t0, send ``POST /api/v1/agents/{id}/
suspend`` while probers call each server back to back with the token; a server's delay is the time from
t0 to the first 401 it answers. Trials run one after another (a fresh agent each).

Printed: one ``#`` line per 10 trials, then ``revocation_latency.<mode>.p50_ms`` / ``p99_ms`` / ``max_ms``
and ``revocation_latency.suspend_api.p50_ms`` (the admin call alone) for the run.

    python bench/revocation_latency.py [--trials 100] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.budget_hook import fields, start_demo  # noqa: E402
from conformance.procs import AuthzServer, free_port, kill_group  # noqa: E402

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
MODES = ("jwt", "hybrid")
GIVE_UP = 10.0  # seconds: a trial that sees no 401 by then counts as this long (and the script exits 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def first_401(http: httpx2.AsyncClient, url: str, token: str, t0: float) -> float:
    headers = {**HEADERS, "authorization": f"Bearer {token}"}
    while time.perf_counter() - t0 < GIVE_UP:
        r = await http.post(url, json=CALL, headers=headers)
        if r.status_code == 401:
            return time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
    return GIVE_UP


async def trial(http: httpx2.AsyncClient, issuer: str, admin: dict[str, str], urls: dict[str, str], n: int
                ) -> tuple[dict[str, float], float]:  # fmt: skip
    api = f"{issuer}/api/v1"
    created = await http.post(f"{api}/agents", json={"name": f"bench agent {n}"}, headers=admin)
    assert created.status_code == 201, created.text
    agent = created.json()["id"]
    issued = await http.post(f"{api}/agents/{agent}/credentials", json={"kind": "secret"}, headers=admin)
    assert issued.status_code == 201, issued.text
    secret = issued.json()["secret"]
    tokens: dict[str, str] = {}
    for mode, url in urls.items():
        data = {"grant_type": "client_credentials", "resource": url, "scope": "tools:read"}
        t = await http.post(f"{issuer}/token", data=data, auth=(agent, secret))
        assert t.status_code == 200, t.text
        tokens[mode] = t.json()["access_token"]
        for _ in range(3):
            r = await http.post(url, json=CALL, headers={**HEADERS, "authorization": f"Bearer {tokens[mode]}"})
            assert r.status_code == 200, (mode, r.text)
    t0 = time.perf_counter()
    probes = [asyncio.create_task(first_401(http, urls[m], tokens[m], t0)) for m in MODES]
    suspended = await http.post(f"{api}/agents/{agent}/suspend", json={}, headers=admin)
    api_time = time.perf_counter() - t0
    assert suspended.status_code == 200, suspended.text
    delays = await asyncio.gather(*probes)
    return dict(zip(MODES, delays, strict=True)), api_time


async def run(issuer: str, admin: dict[str, str], urls: dict[str, str], trials: int) -> int:
    results: dict[str, list[float]] = {m: [] for m in MODES}
    api: list[float] = []
    limits = httpx2.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx2.AsyncClient(timeout=15, limits=limits) as http:
        for n in range(1, trials + 1):
            delays, api_time = await trial(http, issuer, admin, urls, n)
            api.append(api_time)
            for mode, delay in delays.items():
                results[mode].append(delay)
            if n % 10 == 0:
                last = " ".join(f"{m}={statistics.median(results[m][-10:]) * 1000:.1f}ms" for m in MODES)
                print(f"# trials {n - 9}-{n}: median {last}", flush=True)
    for mode in MODES:
        ms = [d * 1000 for d in results[mode]]
        print(f"revocation_latency.{mode}.p50_ms {percentile(ms, 0.50):.1f}")
        print(f"revocation_latency.{mode}.p99_ms {percentile(ms, 0.99):.1f}")
        print(f"revocation_latency.{mode}.max_ms {max(ms):.1f}")
    print(f"revocation_latency.suspend_api.p50_ms {statistics.median(api) * 1000:.1f}")
    gave_up = sum(d >= GIVE_UP for m in MODES for d in results[m])
    print(f"revocation_latency.trials {trials} (no 401 within {GIVE_UP:.0f} s: {gave_up})")
    return 1 if gave_up else 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (server logs)")
    args = p.parse_args()
    data = Path(tempfile.mkdtemp(prefix="authz-bench-revocation."))
    server = AuthzServer(data / "as", env={})
    demos: list[subprocess.Popen[bytes]] = []
    print(f"# data in {data}; {args.trials} trials; loopback only")
    try:
        server.cli("migrate")
        ports = {m: free_port() for m in MODES}
        urls = {m: f"http://127.0.0.1:{port}/mcp" for m, port in ports.items()}
        creds = {}
        for m, url in urls.items():
            out = server.cli("resources", "add", url, "--scopes", "tools:read tools:write", "--name", f"bench-{m}")
            creds[m] = fields(out.stdout)
        ops = fields(server.cli("admin-client", "create", "--name", "bench-ops", "--scopes", "admin:write").stdout)
        server.start()
        for m in MODES:
            extra = ["--mode", m, "--client-id", creds[m]["client_id"]]
            demos.append(
                start_demo(m, ports[m], server.issuer, data, extra, {"RS_CLIENT_SECRET": creds[m]["client_secret"]})
            )
        form = {"grant_type": "client_credentials", "resource": f"{server.issuer}/api/v1", "scope": "admin:write"}
        t = httpx2.post(f"{server.issuer}/token", data=form, auth=(ops["client_id"], ops["client_secret"]), timeout=10)
        assert t.status_code == 200, t.text
        admin = {"authorization": f"Bearer {t.json()['access_token']}"}
        for m in MODES:  # each server opens its stream at start-up: wait for it
            deadline = time.monotonic() + 30
            while not httpx2.get(
                f"{server.issuer}/ssf/stream", auth=(creds[m]["client_id"], creds[m]["client_secret"])
            ).json():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {m} server opened no SSF stream")
                time.sleep(0.1)
        return asyncio.run(run(server.issuer, admin, urls, args.trials))
    finally:
        for proc in demos:
            kill_group(proc)
        server.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
