"""Where a token request's CPU time goes: N sequential requests through the ASGI app, one process.

No server, no load generator, no network: each request is one direct ASGI call of the app that
``authz serve`` runs (same settings, lifespan started, SQLite in a fresh data directory), so the
figures depend little on how loaded the machine is. ``cProfile``, timed by the event loop
thread's CPU time (not wall time: preemption by other processes and the background threads'
work are not counted), records every call; the table groups the time by stage (form parsing,
client authentication, Authlib's grant machinery, policy, budget, JWT signing, audit, ...) by
the module that spent it (self time), and ``--top`` lists the heaviest functions. CPU time per
request, the whole process's and the event loop thread's (the difference is what background
threads such as the audit writer spend), is measured in a separate, unprofiled pass.

    python bench/profile_token.py [--requests 2000] [--scenario basic|agent|pkjwt|exchange|dpop|all] [--top 15]
    python bench/profile_token.py --scenario dpop --set dpop_replica_nonces=1   # any AUTHZ_* setting

The server's uvicorn/httptools part is not in this profile (it is the same for every scenario);
``bench/as_issuance.sh`` measures it end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.inproc import asgi_request, print_top, stage_totals  # noqa: E402

PY = sys.executable
ISSUER = "http://127.0.0.1:9150"
RESOURCE = "http://127.0.0.1:9500/mcp"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"

# (stage, substrings of the file path): the first match names a function's stage.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("DPoP proof check", (f"{ROOT}/dpop/", "authz/oauth/dpop.py", "authz/oauth/replay.py")),
    ("client auth (private_key_jwt)", ("authz/oauth/client_auth.py", "authz/oauth/cimd.py", "/joserfc/")),
    ("client auth (secret)", ("authz/identity/clients", "authz/core/crypto", "hmac", "/hashlib")),
    ("policy decision", ("authz/policy/", "/policies/")),
    ("budget check", ("authz/budgets/",)),
    ("metering", ("authz/metering/",)),
    ("audit append", ("authz/audit/",)),
    ("JWT signing", ("authz/oauth/jws.py", "authz/oauth/keys.py", "authz/oauth/tokens.py", "cryptography")),
    ("token exchange checks", ("authz/oauth/grants/token_exchange", "authz/oauth/trust.py", "token_checks")),
    ("our grants", ("authz/oauth/grants/",)),
    ("Authlib grant machinery", ("/authlib/",)),
    ("form parsing", ("urllib/parse", "authz/oauth/syntax.py", "authz/oauth/requests.py", "multipart")),
    ("storage (SQL)", ("sqlalchemy", "sqlite3", "authz/storage/", "psycopg")),
    ("JSON", ("/json/",)),
    ("token endpoint glue", ("authz/oauth/",)),
    ("Starlette routing + response", ("/starlette/", "/anyio/")),
    ("asyncio", ("/asyncio/",)),
]


def _run(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([PY, "-m", "authz", *args], env=env, check=True, capture_output=True, text=True).stdout


def _field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    raise SystemExit(f"no {name} in: {out}")


def setup(data: str) -> dict[str, str]:
    """The data directory ``bench/as_issuance.sh`` builds: a resource, a secret client, a
    private_key_jwt client, an exchange agent. Returns the credentials."""
    env = {**os.environ, "AUTHZ_ISSUER": ISSUER, "AUTHZ_DATA_DIR": data, "AUTHZ_ACCESS_TOKEN_TTL": "3600"}
    _run("resources", "add", RESOURCE, "--scopes", "tools:read tools:write", "--name", "bench", env=env)
    cc = _field(
        _run("clients", "add", "--client-id", "bench-client", "--grant-type", "client_credentials", env=env),
        "client_secret",
    )
    agent = _field(
        _run("clients", "add", "--client-id", "bench-agent", "--grant-type", "client_credentials",
             "--grant-type", TOKEN_EXCHANGE, env=env),
        "client_secret",
    )  # fmt: skip
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", auto_kid=True)
    Path(data, "key.json").write_text(json.dumps(key.as_dict(private=True)))
    Path(data, "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    _run("clients", "add", "--client-id", "bench-pkjwt", "--auth-method", "private_key_jwt",
         "--jwks-file", f"{data}/jwks.json", "--grant-type", "client_credentials", env=env)  # fmt: skip
    # The production shape: an agent in a team, with a hard budget on the agent (policies and audit are on).
    _run("teams", "create", "bench-team", env=env)
    agent_id = _field(_run("agents", "create", "bench-spender", "--team", "bench-team", env=env), "id")
    spender = _field(_run("agents", "credentials", "issue", agent_id, env=env), "client_secret")
    _run("budgets", "create", "--agent", agent_id, "--metric", "calls", "--limit", "1000000000", env=env)
    os.environ.update(AUTHZ_ISSUER=ISSUER, AUTHZ_DATA_DIR=data, AUTHZ_ACCESS_TOKEN_TTL="3600")
    return {"cc": cc, "agent": agent, "spender_id": agent_id, "spender": spender}


def basic(client_id: str, secret: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())


class Caller:
    """Direct ASGI calls of one app (lifespan running)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_headers: dict[bytes, bytes] = {}

    async def post(self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:9150"), (b"content-type", b"application/x-www-form-urlencoded"),
                        (b"content-length", str(len(body)).encode()), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9150), "state": {},
        }  # fmt: skip
        status, headers_out, out = await asgi_request(self.app, scope, body)
        self.last_headers = dict(headers_out)
        return status, out


def scenarios(creds: dict[str, str], data: str, caller: Caller, n: int) -> dict[str, Callable[[], Any]]:
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from dpop import DpopKey

    res = urllib.parse.quote(RESOURCE, safe="")
    cc_body = f"grant_type=client_credentials&resource={res}&scope=tools%3Aread".encode()
    cc_auth = [(b"authorization", basic("bench-client", creds["cc"]))]
    key = ECKey.import_key(json.loads(Path(data, "key.json").read_text()))
    dpop_key = DpopKey.generate("ES256")
    counter = iter(range(10**9))

    def assertion() -> str:
        now = int(time.time())
        claims = {"iss": "bench-pkjwt", "sub": "bench-pkjwt", "aud": f"{ISSUER}/token", "iat": now,
                  "exp": now + 300, "jti": f"a{next(counter)}-{os.getpid()}"}  # fmt: skip
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)

    async def basic_call() -> tuple[int, bytes]:
        return await caller.post("/token", cc_body, cc_auth)

    spender_auth = [(b"authorization", basic(creds["spender_id"], creds["spender"]))]

    async def agent_call() -> tuple[int, bytes]:
        return await caller.post("/token", cc_body, spender_auth)

    # Client-side signatures are made before the measured loops (as bench/make_*.py do for wrk).
    assertions = iter([assertion().encode() for _ in range(n)])
    proofs: list[Any] = []  # signed on the first call, with the server's nonce when it asks for one
    pk_body = cc_body + b"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"

    async def pkjwt_call() -> tuple[int, bytes]:
        return await caller.post("/token", pk_body + b"&client_assertion=" + next(assertions), [])

    async def dpop_call() -> tuple[int, bytes]:
        if not proofs:
            nonce = None
            status, raw = await caller.post(
                "/token", cc_body, [*cc_auth, (b"dpop", dpop_key.proof("POST", ISSUER + "/token").encode())]
            )
            if status == 400 and json.loads(raw)["error"] == "use_dpop_nonce":
                nonce = caller.last_headers.get(b"dpop-nonce", b"").decode()
            proofs.append(iter([dpop_key.proof("POST", f"{ISSUER}/token", nonce=nonce).encode() for _ in range(n)]))
        return await caller.post("/token", cc_body, [*cc_auth, (b"dpop", next(proofs[0]))])

    exchange_body: list[bytes] = []

    async def exchange_call() -> tuple[int, bytes]:
        if not exchange_body:
            _, raw = await basic_call()
            subject = json.loads(raw)["access_token"]
            exchange_body.append(
                f"grant_type={urllib.parse.quote(TOKEN_EXCHANGE, safe='')}&resource={res}&scope=tools%3Aread"
                f"&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
                f"&subject_token={subject}".encode()
            )
        return await caller.post("/token", exchange_body[0], [(b"authorization", basic("bench-agent", creds["agent"]))])

    return {"basic": basic_call, "agent": agent_call, "pkjwt": pkjwt_call, "exchange": exchange_call, "dpop": dpop_call}


def stage_table(stats: pstats.Stats, n: int) -> list[tuple[str, float]]:
    """Self time per stage (µs/request), largest first."""
    return sorted(stage_totals(stats, STAGES, n).items(), key=lambda x: -x[1])


async def measure(name: str, call: Callable[[], Any], n: int, top: int) -> None:
    for _ in range(min(200, n)):  # warm caches (client keys, policy memo, JIT-free but import-heavy)
        status, body = await call()
        if status != 200:
            raise SystemExit(f"{name}: {status} {body[:300]!r}")
    cpu0, thread0 = time.process_time(), time.thread_time()
    for _ in range(n):
        await call()
    cpu = (time.process_time() - cpu0) / n * 1e6
    inline = (time.thread_time() - thread0) / n * 1e6
    profile = cProfile.Profile(time.thread_time)  # this thread's CPU: no preemption, no background threads
    profile.enable()
    for _ in range(n):
        await call()
    profile.disable()
    stats = pstats.Stats(profile)
    total = sum(t for _, t in stage_table(stats, n))
    print(
        f"\n## {name}: {cpu:.0f} µs CPU per request ({inline:.0f} on the event loop thread, {cpu - inline:.0f} in"
        f" background threads: audit writer, metering), unprofiled, {n} requests; the loop thread profiled by stage"
    )
    print("\n| stage | µs/request (profiled) | share |\n|---|---:|---:|")
    for stage, us in stage_table(stats, n):
        print(f"| {stage} | {us:.0f} | {us / total:.0%} |")
    print_top(stats, n, top, name, str(ROOT))


async def main_async(args: argparse.Namespace) -> None:
    data = tempfile.mkdtemp(prefix="authz-profile.")
    creds = setup(data)
    from authz.asgi import create

    app = create()
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan_in.get, lifespan_out.put)
    )
    await lifespan_in.put({"type": "lifespan.startup"})
    started = await lifespan_out.get()
    assert started["type"] == "lifespan.startup.complete", started
    caller = Caller(app)
    names = ["basic", "agent", "pkjwt", "exchange", "dpop"] if args.scenario == "all" else [args.scenario]
    total = 2 * args.requests + min(200, args.requests)
    calls = scenarios(creds, data, caller, total if {"pkjwt", "dpop"} & set(names) else 0)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"# authz {head.stdout.strip()}, Python {sys.version.split()[0]}, loadavg {load}")
    for name in names:
        await measure(name, calls[name], args.requests, args.top)
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan_out.get()
    await task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--scenario", default="all", choices=["all", "basic", "agent", "pkjwt", "exchange", "dpop"])
    p.add_argument("--top", type=int, default=15)
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting, e.g. dpop_replica_nonces=1"
    )
    args = p.parse_args()
    for item in args.set:
        name, _, value = item.partition("=")
        os.environ["AUTHZ_" + name.upper()] = value
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
