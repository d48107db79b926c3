"""Where the resource-server middleware's CPU time goes: N MCP ``tools/call`` requests, one process.

No server, no load generator, no network: each request is one direct ASGI call of the demo MCP
server (the MCP SDK's Streamable HTTP app, stateless, JSON responses: what ``bench/rs_overhead.py``
serves), lifespan started. The variants, measured in interleaved rounds (CPU time of the process,
``time.process_time``, per request):

- ``plain``          the demo MCP server without the middleware (the baseline)
- ``jwt``            the middleware, local RFC 9068 validation (the token's check memoised)
- ``introspection``  the middleware, introspection mode, every request a cache hit
- ``hooks``          ``jwt`` with the budget hook (a lease held) and the usage reporter on
                     (:class:`~resource_server.budget.BudgetHook` + :class:`~resource_server.usage.UsageReporter`
                     as ``python -m resource_server.demo --budget-hook --metering`` wires them)
- ``dpop``           ``jwt`` with a DPoP-bound token and a fresh proof per request (RFC 9449)

The authorization server is an in-process stub (``httpx2.MockTransport``): metadata, JWKS,
introspection, the budget reserve/settle and metering endpoints; it is called only on the first
request of a token (and for the background settles and shipments, which run on the same loop and
are counted). The added CPU per request of each variant is its figure minus ``plain``'s.
``--profile VARIANT`` then prints a ``cProfile`` of that variant (the event loop thread's CPU
clock) grouped by stage (the module that spent the time) and the heaviest functions, next to
``plain``'s; the difference is the middleware. Python function calls per request (cProfile's count)
are printed too: unlike any time on a shared machine they do not depend on the load. Proofs are
signed before each measured loop.

    python bench/profile_rs.py [--requests 3000] [--rounds 3] [--profile jwt|introspection|hooks|dpop|all] [--top 20]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.inproc import asgi_request, print_top, stage_totals  # noqa: E402

ISSUER = "http://as.bench"
RESOURCE = "http://127.0.0.1:9200/mcp"
RS_ID, RS_SECRET = "rs-client", "rs-secret-value"
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
BODY = json.dumps(CALL).encode()
VARIANTS = ("plain", "jwt", "introspection", "hooks", "dpop")

_VERIFIERS = ("resource_server/jwt.py", "resource_server/cache.py", "resource_server/introspection.py",
              "resource_server/verifier.py", "resource_server/revocation.py", "hashlib", "/joserfc/")  # fmt: skip
# (stage, substrings of the file path): the first match names a function's stage.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("DPoP proof check", ("/dpop/", "resource_server/dpop.py", "cryptography")),
    ("budget hook", ("resource_server/budget.py",)),
    ("usage reporter", ("resource_server/usage.py",)),
    ("hooks plumbing", ("resource_server/hooks.py",)),
    ("token check (verifier, caches)", _VERIFIERS),
    ("JSON-RPC parse (middleware)", ("resource_server/scopes.py", "guard/jsonload.py")),
    ("middleware", ("resource_server/",)),
    ("MCP SDK auth context", ("mcp/server/auth/",)),
    ("MCP SDK (transport, session, tool)", ("/mcp/",)),
    ("pydantic", ("/pydantic",)),
    ("Starlette", ("/starlette/",)),
    ("anyio", ("/anyio/",)),
    ("JSON", ("/json/",)),
    ("asyncio", ("/asyncio/",)),
]


# -- the stub AS ---------------------------------------------------------------------------------


class StubAS:
    """Metadata, JWKS, introspection, budget reserve/settle, metering and the admin token, in memory."""

    def __init__(self) -> None:
        from joserfc.jwk import ECKey

        self.key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
        self.calls = 0

    def mint(self, **extra: Any) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "user-1", "aud": RESOURCE, "client_id": "agent-client",
                  "scope": "tools:read", "iat": now, "exp": now + 3600, "jti": f"j{now}{id(extra)}",
                  "agent": "agent-1", **extra}  # fmt: skip
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}, claims, self.key)

    def __call__(self, request: Any) -> Any:
        import httpx2
        from joserfc import jwt

        self.calls += 1
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx2.Response(200, json={
                "issuer": ISSUER, "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "introspection_endpoint": f"{ISSUER}/introspect"})  # fmt: skip
        if path == "/jwks":
            return httpx2.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if path == "/introspect":
            form = urllib.parse.parse_qs(request.content.decode())
            claims = jwt.decode(form["token"][0], self.key).claims
            return httpx2.Response(200, json={"active": True, "token_type": "Bearer", **claims})
        if path == "/token":
            return httpx2.Response(200, json={"access_token": "admin", "token_type": "Bearer", "expires_in": 3600})
        if path == "/api/v1/budgets/reserve":
            units = json.loads(request.content)["units"]
            return httpx2.Response(200, json={"reservation_id": f"r{self.calls}", "units": units})
        if path == "/api/v1/budgets/settle":
            return httpx2.Response(200, json={"results": []})
        if path == "/api/v1/metering/events":
            events = json.loads(request.content)["events"]
            return httpx2.Response(200, json={"accepted": len(events), "duplicates": [], "rejected": []})
        return httpx2.Response(404, json={"error": "not_found"})


# -- direct ASGI calls ---------------------------------------------------------------------------


class Caller:
    """One app, its lifespan running, called directly with a POST of the JSON-RPC body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._task: asyncio.Task[None] | None = None
        self._in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._in.get, self._out.put))
        await self._in.put({"type": "lifespan.startup"})
        started = await self._out.get()
        assert started["type"] == "lifespan.startup.complete", started

    async def stop(self) -> None:
        await self._in.put({"type": "lifespan.shutdown"})
        await self._out.get()
        assert self._task is not None
        await self._task

    async def post(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9200), "state": {},
            "headers": [(b"host", b"127.0.0.1:9200"), (b"content-type", b"application/json"),
                        (b"accept", b"application/json, text/event-stream"),
                        (b"content-length", str(len(BODY)).encode()), *headers],
        }  # fmt: skip
        status, _headers, out = await asgi_request(self.app, scope, BODY)
        return status, out


def build(stub: StubAS, n: int) -> dict[str, Callable[[], Awaitable[tuple[int, bytes]]]]:
    """The variants' apps (not started) and a call for each; ``build.refill(k)`` signs the next k proofs."""
    import httpx2
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware

    from dpop import DpopKey
    from resource_server import ResourceServerConfig
    from resource_server.budget import BudgetHook
    from resource_server.demo import DEMO_SCOPES, build_server
    from resource_server.hooks import CompositeHook
    from resource_server.mcp import sdk_user
    from resource_server.middleware import ResourceServerMiddleware
    from resource_server.usage import UsageReporter

    def http() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(stub))

    def config(mode: str, **kw: Any) -> ResourceServerConfig:
        return ResourceServerConfig(resource=RESOURCE, issuer=ISSUER, client_id=RS_ID, client_secret=RS_SECRET,
                                    mode=mode, scope_policy=DEMO_SCOPES, **kw)  # type: ignore[arg-type]  # fmt: skip

    def protected(mode: str, hook: Any = None, **kw: Any) -> Any:
        inner = build_server().streamable_http_app(stateless_http=True, json_response=True)
        # What protect_mcp_app builds, with the stub AS's in-memory client
        return ResourceServerMiddleware(
            AuthContextMiddleware(inner), config(mode, **kw), hook=hook, user_factory=sdk_user, http_client=http()
        )

    budget = BudgetHook(ISSUER, "bench-rs", "secret", http_client=http())
    usage = UsageReporter(issuer=ISSUER, resource=RESOURCE, client_id="bench-rs", client_secret="secret", http=http())
    apps: dict[str, Any] = {
        "plain": build_server().streamable_http_app(stateless_http=True, json_response=True),
        "jwt": protected("jwt"),
        "introspection": protected("introspection"),
        "hooks": protected("jwt", CompositeHook(budget, usage)),
        "dpop": protected("jwt"),
    }
    bearer = [(b"authorization", b"Bearer " + stub.mint().encode())]
    key = DpopKey.generate("ES256")
    bound = stub.mint(cnf={"jkt": key.jkt})
    proofs: list[bytes] = []  # signed ahead of each loop (refill): a proof is good for 300 s only

    def refill(count: int) -> None:
        proofs[:] = [key.proof("POST", RESOURCE, access_token=bound).encode() for _ in range(count)]
        proofs.reverse()

    dpop_auth = (b"authorization", b"DPoP " + bound.encode())
    callers = {name: Caller(app) for name, app in apps.items()}

    def call(name: str) -> Callable[[], Awaitable[tuple[int, bytes]]]:
        caller = callers[name]
        if name == "plain":
            return lambda: caller.post([])
        if name == "dpop":
            return lambda: caller.post([dpop_auth, (b"dpop", proofs.pop())])
        return lambda: caller.post(bearer)

    build.callers = callers  # type: ignore[attr-defined]
    build.refill = refill  # type: ignore[attr-defined]
    return {name: call(name) for name in apps}


# -- profiles ------------------------------------------------------------------------------------


def stage_table(stats: pstats.Stats, n: int) -> dict[str, float]:
    """Self time per stage (µs/request)."""
    return stage_totals(stats, STAGES, n)


async def profiled(call: Callable[[], Awaitable[Any]], n: int) -> pstats.Stats:
    build.refill(n)  # type: ignore[attr-defined]
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    for _ in range(n):
        await call()
    profile.disable()
    return pstats.Stats(profile)


def print_profile(name: str, stats: pstats.Stats, base: dict[str, float], n: int, top: int) -> None:
    stages = stage_table(stats, n)
    print(f"\n## {name} vs plain, profiled (µs/request of the loop thread's CPU; cProfile inflates Python code)\n")
    print(f"| stage | plain | {name} | added |\n|---|---:|---:|---:|")
    names = sorted(set(stages) | set(base), key=lambda s: -(stages.get(s, 0) - base.get(s, 0)))
    for stage in names:
        a, b = base.get(stage, 0.0), stages.get(stage, 0.0)
        print(f"| {stage} | {a:.0f} | {b:.0f} | {b - a:+.0f} |")
    a, b = sum(base.values()), sum(stages.values())
    print(f"| **total** | {a:.0f} | {b:.0f} | {b - a:+.0f} |")
    print_top(stats, n, top, name, str(ROOT))


async def main_async(args: argparse.Namespace) -> None:
    stub = StubAS()
    n = args.requests
    calls = build(stub, n)
    refill: Callable[[int], None] = build.refill  # type: ignore[attr-defined]
    if not args.sdk_logs:  # the SDK's rich INFO line per request costs more than the whole middleware
        logging.getLogger().setLevel(logging.WARNING)
    callers: dict[str, Caller] = build.callers  # type: ignore[attr-defined]
    for caller in callers.values():
        await caller.start()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"# authz {head.stdout.strip()}, Python {sys.version.split()[0]}, loadavg {load}, {n} requests x "
          f"{args.rounds} interleaved rounds per variant")  # fmt: skip
    refill(100)
    for name, call in calls.items():  # warm: first uses (JWKS, introspection, the lease), imports
        for _ in range(100):
            status, body = await call()
            if status != 200 or b'"isError":false' not in body.replace(b" ", b""):
                raise SystemExit(f"{name}: {status} {body[:300]!r}")
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for round_no in range(args.rounds):
        order = list(VARIANTS[round_no % len(VARIANTS) :] + VARIANTS[: round_no % len(VARIANTS)])
        for name in order:
            call = calls[name]
            refill(n)
            failed = 0
            t0 = time.process_time()
            for _ in range(n):
                failed += (await call())[0] != 200
            cpu[name].append((time.process_time() - t0) / n * 1e6)
            if failed:
                raise SystemExit(f"{name}: {failed} of {n} requests failed")
    med = {name: statistics.median(values) for name, values in cpu.items()}
    print("\n| variant | CPU µs/request (median of rounds) | added vs plain | plain/variant |\n|---|---:|---:|---:|")
    for name in VARIANTS:
        added = med[name] - med["plain"]
        print(f"| {name} | {med[name]:.0f} | {added:+.0f} | {med['plain'] / med[name]:.3f} |")
    print(f"\n# rounds: {json.dumps({k: [round(v) for v in vs] for k, vs in cpu.items()})}")
    # Python function calls per request (cProfile's count): deterministic, unlike any time on a shared machine.
    counted = {name: await profiled(calls[name], min(n, 500)) for name in VARIANTS}
    per_call = {name: sum(v[1] for v in st.stats.values()) / min(n, 500) for name, st in counted.items()}  # type: ignore[attr-defined]
    print("\n| variant | Python function calls per request | added vs plain |\n|---|---:|---:|")
    for name in VARIANTS:
        print(f"| {name} | {per_call[name]:.0f} | {per_call[name] - per_call['plain']:+.0f} |")
    if args.profile:
        base = stage_table(await profiled(calls["plain"], n), n)
        for name in VARIANTS[1:] if args.profile == "all" else [args.profile]:
            print_profile(name, await profiled(calls[name], n), base, n, args.top)
    for caller in callers.values():
        await caller.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000, help="requests per variant per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", choices=["all", *VARIANTS[1:]], help="print a cProfile stage table of a variant")
    p.add_argument("--top", type=int, default=20)
    p.add_argument(
        "--sdk-logs", action="store_true",
        help="keep the MCP SDK's INFO logging (rich, a line per request: in every variant alike)",
    )  # fmt: skip
    args = p.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
