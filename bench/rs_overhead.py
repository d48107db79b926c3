"""Overhead of the resource-server middleware on an MCP ``tools/call`` (JSON-RPC POST).

Same run, same machine, traffic to 127.0.0.1 only:

- ``rs.plain.rps``          the demo MCP server without the middleware
- ``rs.jwt.rps``            with the middleware, local JWT validation (RFC 9068)
- ``rs.introspection.rps``  with the middleware, introspection mode, every request a cache hit
- ``rs.introspection.cold_ms``  latency of a request whose token is not cached (one RFC 7662 call)
- ``rs.hooks.rps``          the ``jwt`` server with the budget hook (leases) and the usage reporter on, as
                            ``python -m resource_server.demo --budget-hook --metering`` wires them; the bench
                            AS answers the budget reserve/settle and metering calls (``bench/budget_hook.py``
                            measures the budget hook against the real AS)
- ``rs.dpop.rps``           the ``jwt`` server with a DPoP-bound token and a fresh proof per request
                            (RFC 9449: ``Authorization: DPoP``, ``ath``, ``cnf.jkt``, ``jti`` replay cache);
                            ``rs.dpop.vs_bearer`` = its rps / ``rs.jwt.rps`` (same server, same rounds; wrk only)

Each server runs in its own process (uvicorn); the load comes from ``wrk`` (with a Lua script
for the POST body) when installed, otherwise from an httpx2 loop in a separate process. All the
servers are up for the whole run and the load runs alternate in ``--rounds`` rounds (plain, jwt,
introspection, ..., then the next round with the order rotated), so slow drift on a shared machine
hits every variant alike. Each round prints its requests/s and its ratios to ``plain``; then
``rs.*.rps`` is the median of a variant's runs, ``rs.*.ratio`` the ratio of those medians and
``rs.*.ratio_paired`` the median of the per-round ratios (each pairs runs seconds apart: the figure
the targets are read from, printed last as ``rs.target.*`` lines).

Every server, protected or not, runs the MCP SDK's loggers at WARNING: at INFO the SDK renders a
"Terminating session" line per request through ``rich``, which costs more CPU than the whole MCP
request otherwise does and would hide the middleware's cost in the ratio. The ``httpx2`` logger
goes to WARNING too (at INFO, under the root handler the SDK installs, it renders a rich line per
call the hooks or the introspection client make to the AS). ``--sdk-logs`` keeps both at INFO, in
every variant alike. Uvicorn's access log is off in every variant.
``rs.*.cpu_us`` is the server process's CPU time (user + system) per request over a run (median of
the runs) and ``rs.*.cpu_ratio`` = plain's / the variant's: on a shared machine, where other
processes steal the cores, these say what the middleware costs better than requests per second.

    python bench/rs_overhead.py [--duration 5] [--rounds 5] [--connections 32] [--threads 2] [--sdk-logs]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.wrk_post import wrk_post  # noqa: E402

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
RS_ID, RS_SECRET = "rs-client", "rs-secret-value"  # the test AS's resource-server credentials
# Median per-round ratio each variant must reach: to plain (DPoP: to bearer, the same jwt server).
TARGETS = {"jwt": 0.95, "introspection": 0.9, "hooks": 0.9, "dpop": 0.85}


# -- servers (each started as `python bench/rs_overhead.py --serve KIND --port N --issuer URL`) ----


def serve(kind: str, port: int, issuer: str, sdk_logs: bool = False) -> None:
    import uvicorn

    if kind == "as":
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        from tests.resource_server.fake_as import FakeAS

        fake = FakeAS(issuer, resource="")

        async def mint(request: Request) -> PlainTextResponse:
            jkt = request.query_params.get("jkt")
            extra: dict[str, Any] = {"agent": "bench-agent"}  # a subject the budget hook charges
            if jkt:
                extra["cnf"] = {"jkt": jkt}
            return PlainTextResponse(fake.mint(aud=request.query_params["aud"], scope="tools:read", **extra))

        fake.app.router.routes.append(Route("/mint", mint, methods=["POST"]))
        fake.app.router.routes.extend(_hook_routes())
        app: Any = fake.app
    else:
        from resource_server import ResourceServerConfig
        from resource_server.demo import DEMO_SCOPES, build_app, build_server

        resource = f"http://127.0.0.1:{port}/mcp"
        if kind == "plain":
            app = build_server().streamable_http_app(stateless_http=True, json_response=True)
        else:
            config = ResourceServerConfig(
                resource=resource,
                issuer=issuer,
                client_id=RS_ID,
                client_secret=RS_SECRET,
                mode="introspection" if kind == "introspection" else "jwt",
                scope_policy=DEMO_SCOPES,
            )
            app = build_app(config, hook=_hooks(issuer, resource) if kind == "hooks" else None, stateless=True,
                            json_response=True)  # fmt: skip
    if not sdk_logs:  # every variant alike: an INFO line rendered by rich would dominate the CPU
        logging.getLogger("mcp").setLevel(logging.WARNING)  # the SDK's, one per request
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # the HTTP client's, one per call to the AS
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none")


def _hooks(issuer: str, resource: str) -> Any:
    """The budget hook and the usage reporter, composed as the demo's ``--budget-hook --metering``."""
    from resource_server.budget import BudgetHook
    from resource_server.hooks import CompositeHook
    from resource_server.usage import UsageReporter

    budget = BudgetHook(issuer, "bench-rs", "bench-rs-secret")
    usage = UsageReporter(issuer=issuer, resource=resource, client_id="bench-rs", client_secret="bench-rs-secret")
    return CompositeHook(budget, usage)


def _hook_routes() -> list[Any]:
    """The AS side of the hooks: the admin-API token, budget leases and settles, metering intake."""
    import itertools

    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    ids = itertools.count()
    counts: dict[str, int] = {"reserves": 0, "units": 0, "settles": 0, "leases_settled": 0, "shipments": 0, "events": 0}

    async def token(request: Request) -> JSONResponse:
        return JSONResponse({"access_token": "bench-admin", "token_type": "Bearer", "expires_in": 3600})

    async def reserve(request: Request) -> JSONResponse:
        units = (await request.json()).get("units", 1)
        counts["reserves"] += 1
        counts["units"] += units
        return JSONResponse({"reservation_id": f"r{next(ids)}", "units": units})

    async def settle(request: Request) -> JSONResponse:
        counts["settles"] += 1
        counts["leases_settled"] += len((await request.json())["settlements"])
        return JSONResponse({"results": []})

    async def events(request: Request) -> JSONResponse:
        count = len((await request.json())["events"])
        counts["shipments"] += 1
        counts["events"] += count
        return JSONResponse({"accepted": count, "duplicates": [], "rejected": []})

    async def tally(request: Request) -> JSONResponse:
        return JSONResponse(counts)

    return [
        Route("/bench/counts", tally, methods=["GET"]),
        Route("/token", token, methods=["POST"]),
        Route("/api/v1/budgets/reserve", reserve, methods=["POST"]),
        Route("/api/v1/budgets/settle", settle, methods=["POST"]),
        Route("/api/v1/metering/events", events, methods=["POST"]),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(
    kind: str, issuer: str, port: int | None = None, sdk_logs: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    port = port or free_port()
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--issuer", issuer]
    cmd += ["--sdk-logs"] if sdk_logs else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start") from None
            time.sleep(0.05)


# -- load ------------------------------------------------------------------------------------


def wrk_rps(url: str, token: str | None, args: argparse.Namespace) -> tuple[float, int]:
    headers = dict(HEADERS)
    if token:
        headers["authorization"] = f"Bearer {token}"
    r = wrk_post(url, CALL, headers, threads=args.threads, connections=args.connections, duration=args.duration)
    if r.non2xx:
        raise RuntimeError(f"non-2xx responses under load:\n{r.output}")
    return r.rps, r.requests


_LOOP = """
import sys, time, anyio, httpx2, json
url, token, duration, conc = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
body = json.dumps(%s).encode()
headers = %s
if token != "-":
    headers["authorization"] = "Bearer " + token
count = 0
async def worker(client, stop):
    global count
    while time.monotonic() < stop:
        r = await client.post(url, content=body, headers=headers)
        assert r.status_code == 200, r.status_code
        count += 1
async def main():
    limits = httpx2.Limits(max_connections=conc)
    async with httpx2.AsyncClient(limits=limits) as client:
        start = time.monotonic(); stop = start + duration
        async with anyio.create_task_group() as tg:
            for _ in range(conc):
                tg.start_soon(worker, client, stop)
        print(count / (time.monotonic() - start))
anyio.run(main)
"""


def dpop_rps(url: str, token: str, key: Any, args: argparse.Namespace) -> tuple[float, int]:
    """The jwt server with a DPoP-bound token: a fresh proof (unique jti, ath) on every request."""
    from dpop import DpopKey

    assert isinstance(key, DpopKey)
    count = max(20_000, args.duration * 6_000)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(key.proof("POST", url, access_token=token) + "\n" for _ in range(count)))
    headers = {**HEADERS, "authorization": f"DPoP {token}"}
    try:
        r = wrk_post(url, CALL, headers, threads=args.threads, connections=args.connections,
                     duration=args.duration, header_file=("dpop", f.name))  # fmt: skip
    finally:
        os.unlink(f.name)
    if r.non2xx:
        raise RuntimeError(f"non-2xx responses under load (DPoP):\n{r.output}")
    return r.rps, r.requests


def loop_rps(url: str, token: str | None, args: argparse.Namespace) -> tuple[float, int]:
    code = _LOOP % (repr(CALL), repr(HEADERS))
    cmd = [sys.executable, "-c", code, url, token or "-", str(args.duration), str(args.connections)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=args.duration + 60)
    rps = float(out.stdout.strip())
    return rps, round(rps * args.duration)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_latency_ms(url: str, as_url: str, samples: int) -> tuple[float, float]:
    """Median latency of a first use (cache miss: one introspection) and of a cached reuse."""
    cold: list[float] = []
    warm: list[float] = []
    with httpx2.Client() as client:
        for _ in range(samples):
            token = client.post(f"{as_url}/mint", params={"aud": url}).text
            headers = {**HEADERS, "authorization": f"Bearer {token}"}
            for bucket in (cold, warm):
                t0 = time.perf_counter()
                r = client.post(url, json=CALL, headers=headers)
                bucket.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.status_code
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=int, default=5, help="seconds per load run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=50, help="cold-latency samples")
    p.add_argument("--rounds", "--repeat", dest="rounds", type=int, default=3,
                   help="alternating rounds (each: one load run per variant; medians count)")  # fmt: skip
    p.add_argument("--sdk-logs", action="store_true",
                   help="keep the MCP SDK's INFO logging (a rich line per request) in every server")  # fmt: skip
    p.add_argument("--serve", choices=["as", "plain", "jwt", "introspection", "hooks"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--issuer", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.issuer, args.sdk_logs)
        return

    load = wrk_rps if shutil.which("wrk") else loop_rps
    print(
        f"# load generator: {'wrk' if load is wrk_rps else 'httpx2 loop'}, {args.connections} connections, "
        f"{args.duration}s per run, {args.rounds} alternating rounds, MCP SDK logs "
        f"{'at INFO' if args.sdk_logs else 'at WARNING'} in every server; load {os.getloadavg()[0]:.2f}"
    )
    as_port = free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    procs: list[subprocess.Popen[bytes]] = []
    kinds: tuple[str, ...] = ("plain", "jwt", "introspection", "hooks")
    try:
        as_proc, _ = start("as", issuer, as_port, args.sdk_logs)
        procs.append(as_proc)
        targets: dict[str, tuple[str, str | None]] = {}
        pids: dict[str, int] = {}
        for kind in kinds:
            proc, port = start(kind, issuer, sdk_logs=args.sdk_logs)
            procs.append(proc)
            pids[kind] = proc.pid
            url = f"http://127.0.0.1:{port}/mcp"
            token = None if kind == "plain" else httpx2.post(f"{issuer}/mint", params={"aud": url}).text
            check = httpx2.post(
                url, json=CALL, headers={**HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
            )
            assert check.status_code == 200, (kind, check.status_code, check.text)
            targets[kind] = (url, token)
        dpop_key: Any = None
        if load is wrk_rps:
            from dpop import DpopKey

            dpop_key = DpopKey.generate()
            jwt_url = targets["jwt"][0]
            bound = httpx2.post(f"{issuer}/mint", params={"aud": jwt_url, "jkt": dpop_key.jkt}).text
            targets["dpop"] = (jwt_url, bound)
            pids["dpop"] = pids["jwt"]
            kinds = (*kinds, "dpop")
        runs: dict[str, list[float]] = {kind: [] for kind in kinds}
        hooks_requests = 0
        cpu: dict[str, list[float]] = {kind: [] for kind in kinds}  # server CPU µs per request
        for round_no in range(args.rounds):
            shift = round_no % len(kinds)  # rotate the order: no variant always runs first or last
            for kind in kinds[shift:] + kinds[:shift]:
                url, token = targets[kind]
                before = cpu_seconds(pids[kind])
                if kind == "dpop":
                    assert token is not None
                    rps, requests = dpop_rps(url, token, dpop_key, args)
                else:
                    rps, requests = load(url, token, args)
                runs[kind].append(rps)
                hooks_requests += requests if kind == "hooks" else 0
                cpu[kind].append((cpu_seconds(pids[kind]) - before) / max(1, requests) * 1e6)
            line = " ".join(f"{kind}={runs[kind][-1]:.0f}" for kind in kinds)
            ratios = " ".join(f"{kind}/plain={runs[kind][-1] / runs['plain'][-1]:.3f}" for kind in kinds[1:])
            print(f"# round {round_no + 1}: {line} rps; {ratios}; load {os.getloadavg()[0]:.2f}")
            print("#   server CPU µs/request: " + " ".join(f"{kind}={cpu[kind][-1]:.0f}" for kind in kinds))
        results = {kind: statistics.median(values) for kind, values in runs.items()}
        # What the hooks variant asked of the AS over the whole run (reserves: leases; settles: batches).
        tally = httpx2.get(f"{issuer}/bench/counts").json()
        print("# hooks at the AS: " + " ".join(f"{k}={v}" for k, v in tally.items())
              + f" (hooks requests measured: {hooks_requests})")  # fmt: skip
        for kind in kinds:
            print(f"rs.{kind}.rps {results[kind]:.0f}")
        cold, warm = cold_latency_ms(targets["introspection"][0], issuer, args.samples)
        print(f"rs.introspection.cold_ms {cold:.2f}")
        print(f"rs.introspection.cached_ms {warm:.2f}")
        for kind in kinds[1:]:
            print(f"rs.{kind}.ratio {results[kind] / results['plain']:.3f}")
        paired: dict[str, float] = {}
        for kind in kinds[1:]:  # each round's ratio pairs runs seconds apart: less exposed to drift
            paired[kind] = statistics.median(a / b for a, b in zip(runs[kind], runs["plain"], strict=True))
            print(f"rs.{kind}.ratio_paired {paired[kind]:.3f}")
        # Server CPU per request (the process's user+system time over a run / its requests): what the
        # middleware costs, little affected by other processes on a shared machine.
        cpu_med = {kind: statistics.median(values) for kind, values in cpu.items()}
        for kind in kinds:
            print(f"rs.{kind}.cpu_us {cpu_med[kind]:.0f}")
        for kind in kinds[1:]:
            print(f"rs.{kind}.cpu_ratio {cpu_med['plain'] / cpu_med[kind]:.3f}")
        if "dpop" in runs:
            print(f"rs.dpop.cpu_vs_bearer {cpu_med['jwt'] / cpu_med['dpop']:.3f}")
            print(f"rs.dpop.vs_bearer {results['dpop'] / results['jwt']:.3f}")
            paired["dpop"] = statistics.median(a / b for a, b in zip(runs["dpop"], runs["jwt"], strict=True))
            print(f"rs.dpop.vs_bearer_paired {paired['dpop']:.3f}")
        for kind, target in TARGETS.items():  # the median of the per-round ratios against issue #17's targets
            if kind in paired:
                verdict = "met" if paired[kind] >= target else "NOT met"
                print(f"rs.target.{kind} {paired[kind]:.3f} >= {target} {verdict} (load {os.getloadavg()[0]:.2f})")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
