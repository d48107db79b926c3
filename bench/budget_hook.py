"""Demo MCP server throughput with the budget and usage hooks ON vs OFF, in one run (target: >= 0.9).

Everything on 127.0.0.1, real processes, a temporary data dir:

- ``authz serve --dev`` (1 worker, SQLite ledger) with an agent holding a secret and a hard
  ``calls`` budget of 100,000,000 per day, and an admin client with scopes ``budgets:use metering:write``;
- two demo MCP servers (``python -m resource_server.demo --mode jwt``), each its own registered
  resource: ``off`` without the hook, ``on`` with ``--budget-hook`` (lease budget slices at the AS's
  ``POST /api/v1/budgets/reserve``, hand one unit to each tool call, settle leases in the background;
  ``--lease-max 1`` reserves before every call instead) and ``--metering`` (a ``call.completed``
  event per call, shipped to ``POST /api/v1/metering/events`` every second; ``--no-metering``: the
  budget hook alone);
- an agent token (client_credentials, ``resource`` = that server) per server;
- ``wrk`` POSTing a JSON-RPC ``tools/call`` of ``add`` with the bearer token, in interleaved rounds
  (the order alternates every round so neither variant always runs first).

Printed: per-round figures as ``#`` comments, then ``budget_hook.off.rps``, ``budget_hook.on.rps``
(medians), ``budget_hook.ratio`` (median of the per-round on/off ratios), each demo server's CPU per
request (``/proc``, user + system, median of the rounds: ``budget_hook.{off,on}.cpu_us`` and
``budget_hook.cpu_ratio`` = off/on) and the AS's CPU per "on" request (the reserves, settles and
metering shipments it answers: on two shared cores it competes with the "on" server for the CPU,
so it lowers the rps ratio without being the hook's own cost), the non-2xx and socket error counts
(both must be 0; the script exits 1 otherwise) and the calls the AS charged.

Both demo servers run with ``--log-level warning`` (``--sdk-logs``: ``info``, both alike): at info the
MCP SDK renders a line per request through ``rich`` and uvicorn writes an access line, which together
cost more CPU than the rest of the request and would hide what the hook costs.

    python bench/budget_hook.py [--duration 5] [--rounds 3] [--connections 32] [--threads 2] [--lease-max 64]
                                [--no-metering] [--keep] [--sdk-logs]
"""

from __future__ import annotations

import argparse
import os
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

from bench.wrk_post import wrk_post  # noqa: E402
from conformance.procs import AuthzServer, clean_env, free_port, kill_group  # noqa: E402

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
BUDGET_LIMIT = 100_000_000


def fields(output: str) -> dict[str, str]:
    """``key:   value   (comment)`` lines printed by the CLI -> {key: value}."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key and " " not in key.strip() and rest.strip():
            out[key.strip()] = rest.split()[0]
    return out


def start_demo(
    name: str, port: int, issuer: str, data: Path, extra: list[str], env: dict[str, str], log_level: str
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "resource_server.demo", "--port", str(port), "--issuer", issuer, "--mode", "jwt",
           "--log-level", log_level]  # fmt: skip
    with open(data / f"demo-{name}.log", "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--json-response", *extra],
            env=clean_env({**env, "PYTHONPATH": str(ROOT)}),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"demo {name} exited: {(data / f'demo-{name}.log').read_text()}")
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return proc
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    kill_group(proc)
    raise TimeoutError(f"demo {name} did not answer {url}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rpartition(")")[2].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def token(issuer: str, client_id: str, secret: str, resource: str) -> str:
    data = {"grant_type": "client_credentials", "resource": resource, "scope": "tools:read"}
    r = httpx2.post(f"{issuer}/token", data=data, auth=(client_id, secret), timeout=10)
    assert r.status_code == 200, r.text
    value: str = r.json()["access_token"]
    return value


def wrk(url: str, bearer: str, args: argparse.Namespace) -> tuple[float, int, int, int]:
    """(requests/s, requests, non-2xx responses, socket errors) of one wrk run."""
    headers = {**HEADERS, "authorization": f"Bearer {bearer}"}
    r = wrk_post(url, CALL, headers, threads=args.threads, connections=args.connections, duration=args.duration)
    return r.rps, r.requests, r.non2xx, r.socket_errors


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=int, default=5, help="seconds per load run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each: off and on)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per server first")
    p.add_argument("--lease-max", type=int, default=64, help="the hook's --budget-lease-max (1: no leasing)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (server logs)")
    p.add_argument("--no-metering", action="store_true", help="the budget hook alone (no usage reporter)")
    p.add_argument("--sdk-logs", action="store_true",
                   help="both demo servers at log level info (an access and a rich SDK line per request)")  # fmt: skip
    args = p.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2

    data = Path(tempfile.mkdtemp(prefix="authz-bench-budget."))
    server = AuthzServer(data / "as", env={"AUTHZ_ACCESS_TOKEN_TTL": "3600"})
    demos: list[subprocess.Popen[bytes]] = []
    print(
        f"# data in {data}; wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds x {args.duration}s "
        f"per variant (+{args.warmup}s warm-up); loopback only"
    )
    try:
        server.cli("migrate")
        ports = {"off": free_port(), "on": free_port()}
        urls = {name: f"http://127.0.0.1:{port}/mcp" for name, port in ports.items()}
        for name, url in urls.items():
            server.cli("resources", "add", url, "--scopes", "tools:read tools:write", "--name", f"bench-{name}")
        agent = fields(server.cli("agents", "create", "bench agent").stdout)["id"]
        secret = fields(server.cli("agents", "credentials", "issue", agent, "--kind", "secret").stdout)["client_secret"]
        created = server.cli("budgets", "create", "--agent", agent, "--metric", "calls", "--limit", str(BUDGET_LIMIT),
                             "--period", "day").stdout  # fmt: skip
        budget_id = fields(created)["budget_id"]
        scopes = "budgets:use" if args.no_metering else "budgets:use metering:write"
        rs = fields(server.cli("admin-client", "create", "--name", "bench-mcp", "--scopes", scopes).stdout)
        server.start()

        hook = ["--budget-hook", "--budget-client-id", rs["client_id"], "--budget-lease-max", str(args.lease_max)]
        if not args.no_metering:  # the usage reporter too, as the demo's --budget-hook --metering wires them
            hook += ["--metering", "--metering-client-id", rs["client_id"]]
        level = "info" if args.sdk_logs else "warning"
        demos.append(start_demo("off", ports["off"], server.issuer, data, [], {}, level))
        secret_env = {"RS_BUDGET_CLIENT_SECRET": rs["client_secret"], "RS_METERING_CLIENT_SECRET": rs["client_secret"]}
        demos.append(start_demo("on", ports["on"], server.issuer, data, hook, secret_env, level))
        bearers = {name: token(server.issuer, agent, secret, url) for name, url in urls.items()}
        for name, url in urls.items():  # one checked call each, then an unmeasured warm-up
            r = httpx2.post(url, json=CALL, headers={**HEADERS, "authorization": f"Bearer {bearers[name]}"})
            assert r.status_code == 200 and r.json()["result"]["structuredContent"]["result"] == 3, (name, r.text)
            if args.warmup:
                wrk(url, bearers[name], argparse.Namespace(**{**vars(args), "duration": args.warmup}))

        runs: dict[str, list[float]] = {"off": [], "on": []}
        pids = {"off": demos[0].pid, "on": demos[1].pid}
        assert server.proc is not None
        cpu: dict[str, list[float]] = {"off": [], "on": [], "as_per_on": []}  # µs per request
        bad = {"non2xx": 0, "socket_errors": 0}
        failures: list[str] = []
        measured = {"off": 0, "on": 0}
        for round_no in range(args.rounds):
            order = ("off", "on") if round_no % 2 == 0 else ("on", "off")
            for name in order:
                before, as_before = cpu_seconds(pids[name]), cpu_seconds(server.proc.pid)
                rps, total, non2xx, errors = wrk(urls[name], bearers[name], args)
                cpu[name].append((cpu_seconds(pids[name]) - before) / max(1, total) * 1e6)
                if name == "on":  # what the hooks' reserves, settles and metering cost the AS, per call
                    cpu["as_per_on"].append((cpu_seconds(server.proc.pid) - as_before) / max(1, total) * 1e6)
                runs[name].append(rps)
                measured[name] += total
                bad["non2xx"] += non2xx
                bad["socket_errors"] += errors
                if non2xx or errors:
                    failures.append(f"{name}: {non2xx} non-2xx, {errors} socket errors")
            ratio = runs["on"][-1] / runs["off"][-1]
            print(
                f"# round {round_no + 1} ({'/'.join(order)}): off={runs['off'][-1]:.0f} on={runs['on'][-1]:.0f} rps "
                f"ratio={ratio:.3f}; server CPU µs/request off={cpu['off'][-1]:.0f} on={cpu['on'][-1]:.0f} "
                f"(+ AS {cpu['as_per_on'][-1]:.0f}); load {os.getloadavg()[0]:.2f}"
                + (f" ({'; '.join(failures)})" if failures else "")
            )
            failures.clear()
        ratio = statistics.median(on / off for on, off in zip(runs["on"], runs["off"], strict=True))
        print(f"budget_hook.off.rps {statistics.median(runs['off']):.0f}")
        print(f"budget_hook.on.rps {statistics.median(runs['on']):.0f}")
        print(f"budget_hook.ratio {ratio:.3f}")
        med = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"budget_hook.off.cpu_us {med['off']:.0f}")
        print(f"budget_hook.on.cpu_us {med['on']:.0f}")
        print(f"budget_hook.cpu_ratio {med['off'] / med['on']:.3f}")
        print(f"budget_hook.as_cpu_us_per_on_request {med['as_per_on']:.0f}")
        print(f"budget_hook.non2xx {bad['non2xx']}")
        print(f"budget_hook.socket_errors {bad['socket_errors']}")

        # The settles run in the background: give them a moment, then read what the AS charged.
        spent = ""
        for _ in range(50):
            status = server.cli("budgets", "status", budget_id).stdout
            spent = next((ln.split()[1] for ln in status.splitlines() if ln.split()[:1] == ["spent"]), "")
            reserved = next((ln.split()[1] for ln in status.splitlines() if ln.split()[:1] == ["reserved"]), "0")
            if reserved == "0":
                break
            time.sleep(0.2)
        print(f"# budget {budget_id}: spent {spent} calls at the AS (measured 'on' requests: {measured['on']})")
        return 0 if bad["non2xx"] == 0 and bad["socket_errors"] == 0 else 1
    finally:
        for proc in demos:
            kill_group(proc)
        server.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
