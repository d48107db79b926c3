"""The resource-server middleware alone: where each microsecond of a protected ``tools/call`` goes.

The middleware as ``protect_mcp_app`` builds it (with the MCP SDK's auth-context middleware inside)
around a trivial ASGI app that reads the body and answers 200, called directly in one process (no
server, no network; the stub AS of ``bench/profile_rs.py`` answers the first JWKS or introspection
request). Printed: the CPU per request of the trivial app alone and wrapped (unprofiled,
``time.process_time``, the minimum of ``--rounds``), then a ``cProfile`` of the wrapped app
(the loop thread's CPU clock) as a table of the steps the middleware takes: each function the
middleware calls, with everything it calls in turn, and the middleware's own code ("glue").
cProfile inflates Python code against C several times over: the table says *where*, the unprofiled
figures *how much*.

    python bench/profile_middleware.py [--mode jwt|introspection] [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.profile_rs import ISSUER, RESOURCE, RS_ID, RS_SECRET, Caller, StubAS  # noqa: E402

MIDDLEWARE = "resource_server/middleware.py"
GLUE = frozenset({"__call__", "_protected", "_call_app", "send_wrapper"})  # the request path's own frames
# Functions the middleware calls, by (file ending, function name) -> the step they belong to.
STEPS = {
    ("middleware.py", "_headers"): "read the headers it needs",
    ("middleware.py", "_credentials"): "Authorization header (scheme, token68)",
    ("middleware.py", "_read_body"): "read the body",
    ("middleware.py", "_is_protected"): "read the headers it needs",
    ("middleware.py", "_replay"): "replay the body to the app",
    ("middleware.py", "_may_name_access_token"): "read the headers it needs",
    ("scopes.py", "parse_calls"): "JSON-RPC parse (method, tool, id, arguments)",
    ("scopes.py", "check_routing_headers"): "Mcp-Method / Mcp-Name check",
    ("scopes.py", "required"): "scopes: required by the call",
    ("scopes.py", "satisfied_by"): "scopes: granted cover required",
    ("verifier.py", "verify"): "token check (memo / cache hit)",
    ("verifier.py", "inner"): "token check (memo / cache hit)",
    ("middleware.py", "_verify"): "token check (memo / cache hit)",
    ("jwt.py", "verify"): "token check (memo / cache hit)",
    ("introspection.py", "verify"): "token check (memo / cache hit)",
    ("dpop.py", "refusal"): "DPoP: bound token sent as Bearer? (RFC 9449 §7.2)",
    ("dpop.py", "bound_jkt"): "DPoP: bound token sent as Bearer? (RFC 9449 §7.2)",
    ("mcp.py", "sdk_user"): 'scope["user"], scope["auth"] (SDK AccessToken)',
    ("authentication.py", "__init__"): 'scope["user"], scope["auth"] (SDK AccessToken)',
    ("middleware.py", "_identity"): 'scope["user"], scope["auth"] (SDK AccessToken)',
    ("context.py", "enter_request_context"): "request context (current_token) bind / reset",
    ("context.py", "exit_request_context"): "request context (current_token) bind / reset",
    ("<string>", "__init__"): "request context (current_token) bind / reset",
    ("auth_context.py", "__call__"): "the app (SDK auth context + trivial app)",
}


async def trivial(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"jsonrpc":"2.0","id":1,"result":{}}'})


def step_table(stats: pstats.Stats, n: int) -> dict[str, float]:
    """µs/request per step: each function the middleware's request path calls (with what it calls in
    turn), and that path's own code ("glue": its self time and the built-ins it calls directly)."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    glue = "middleware glue (its own code)"

    def is_glue(filename: str, name: str) -> bool:
        return filename.endswith(MIDDLEWARE) and name in GLUE

    for (filename, _line, name), (_cc, _nc, tt, _ct, callers) in table.items():
        if is_glue(filename, name):
            out[glue] = out.get(glue, 0.0) + tt
            continue
        for (cfile, _cline, cname), (_c1, _c2, _ctt, cct) in callers.items():
            if not is_glue(cfile, cname):
                continue
            step = next((s for (f, fn), s in STEPS.items() if filename.endswith(f) and name == fn), None)
            if step is None:
                step = glue if filename == "~" else f"{Path(filename).name}:{name}"
            out[step] = out.get(step, 0.0) + cct
    return {k: v / n * 1e6 for k, v in out.items()}


async def main_async(args: argparse.Namespace) -> None:
    import httpx2
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware

    from resource_server import ResourceServerConfig
    from resource_server.demo import DEMO_SCOPES
    from resource_server.mcp import sdk_user
    from resource_server.middleware import ResourceServerMiddleware

    stub = StubAS()
    config = ResourceServerConfig(resource=RESOURCE, issuer=ISSUER, client_id=RS_ID, client_secret=RS_SECRET,
                                  mode=args.mode, scope_policy=DEMO_SCOPES)  # fmt: skip
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(stub))
    app = ResourceServerMiddleware(AuthContextMiddleware(trivial), config, user_factory=sdk_user, http_client=http)
    headers = [(b"authorization", b"Bearer " + stub.mint().encode())]
    plain, wrapped = Caller(trivial), Caller(app)
    for _ in range(200):
        status, body = await wrapped.post(headers)
        assert status == 200, body
    n = args.requests
    cpu: dict[str, list[float]] = {"trivial app": [], "wrapped": []}
    for _ in range(args.rounds):
        for name, caller, hdrs in (("trivial app", plain, []), ("wrapped", wrapped, headers)):
            t0 = time.process_time()
            for _ in range(n):
                await caller.post(hdrs)
            cpu[name].append((time.process_time() - t0) / n * 1e6)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    load = open("/proc/loadavg").read().split()[:3]
    best = {k: min(v) for k, v in cpu.items()}
    print(f"# authz {head.stdout.strip()}, Python {sys.version.split()[0]}, loadavg {load}, mode {args.mode}, "
          f"{n} requests x {args.rounds} rounds")  # fmt: skip
    print(f"# CPU µs/request (min of rounds): trivial app {best['trivial app']:.1f}, wrapped {best['wrapped']:.1f}, "
          f"the middleware {best['wrapped'] - best['trivial app']:.1f}")  # fmt: skip
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    for _ in range(n):
        await wrapped.post(headers)
    profile.disable()
    steps = step_table(pstats.Stats(profile), n)
    total = sum(v for k, v in steps.items() if not k.startswith("the app"))
    print("\n| step | µs/request (profiled) | share of the middleware |\n|---|---:|---:|")
    for step, us in sorted(steps.items(), key=lambda kv: -kv[1]):
        share = "" if step.startswith("the app") else f"{us / total:.0%}"
        print(f"| {step} | {us:.1f} | {share} |")
    print(f"| **the middleware (without the app)** | {total:.1f} | 100% |")
    await http.aclose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["jwt", "introspection"], default="jwt")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
