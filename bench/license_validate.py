"""validate-key throughput of one ``authz serve`` process, side by side with client_credentials
issuance in the same run (target: validate-key >= 5,000/s on one process).

Everything on 127.0.0.1, a real ``authz serve`` (1 worker, SQLite, production mode) in a temporary
data dir:

- a product, a policy (entitlement ``pro``, 3 machines, heartbeats every hour) and a license made
  with ``authz licenses``; one machine activated with ``Authorization: License <key>``;
- validate-key: ``wrk`` POSTing ``{"key", "nonce", "scope": {"fingerprint", "entitlements"}}`` to
  ``/api/v1/licenses/actions/validate-key``; each answer is a full validation (rate limits counted
  per key and per IP — the limits are raised so the load is not refused — the check order, an
  Ed25519-signed body with the nonce);
- client_credentials: ``wrk`` POSTing the form of a client_secret_basic client (ES256 JWT);
- interleaved rounds (the order alternates), so both see the same machine load.

One signed answer is verified with ``agent_client.licenses.verify_response`` before the load.
Printed: per-round figures as ``#`` comments, then ``license_validate.validate.rps``,
``license_validate.client_credentials.rps`` (medians), ``license_validate.ratio`` (median of the
per-round validate/issuance ratios) and non-2xx / socket error counts (both must be 0).

    python bench/license_validate.py [--duration 5] [--rounds 3] [--connections 32] [--threads 2] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_client.licenses import verify_response  # noqa: E402
from bench.budget_hook import fields  # noqa: E402
from bench.wrk_post import WrkResult, wrk_post  # noqa: E402
from conformance.procs import AuthzServer  # noqa: E402

RESOURCE = "http://127.0.0.1:9500/mcp"
HIGH = str(10**9)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per load run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each: validate and issuance)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per scenario first")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (server log)")
    args = p.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    data = Path(tempfile.mkdtemp(prefix="authz-bench-license."))
    env = {"AUTHZ_LICENSE_RATE_PER_KEY": HIGH, "AUTHZ_LICENSE_RATE_PER_IP": HIGH, "AUTHZ_ACCESS_TOKEN_TTL": "300"}
    server = AuthzServer(data / "as", dev=False, env=env)
    print(f"# data in {data}; wrk -t{args.threads} -c{args.connections}, {args.rounds} rounds x {args.duration}s "
          f"per scenario (+{args.warmup}s warm-up); 1 server process; loopback only")  # fmt: skip
    try:
        server.cli("migrate")
        server.cli("licenses", "products", "add", "app")
        policy = ["--product", "app", "--name", "bench", "--entitlement", "pro", "--max-machines", "3"]
        pol = fields(server.cli("licenses", "policies", "add", *policy, "--heartbeat-interval", "3600").stdout)
        key = fields(server.cli("licenses", "create", "--policy", pol["policy_id"]).stdout)["key"]
        server.cli("resources", "add", RESOURCE, "--scopes", "tools:read tools:write", "--name", "bench")
        cc = fields(server.cli("clients", "add", "--client-id", "bench-client", "--grant-type",
                               "client_credentials").stdout)  # fmt: skip
        server.start()
        api = f"{server.issuer}/api/v1"
        r = httpx2.post(f"{api}/machines/actions/activate", json={"fingerprint": "bench-fp"},
                        headers={"Authorization": f"License {key}"}, timeout=10)  # fmt: skip
        assert r.status_code == 201, r.text
        body = {"key": key, "nonce": "bench-nonce", "scope": {"fingerprint": "bench-fp", "entitlements": ["pro"]}}
        r = httpx2.post(f"{api}/licenses/actions/validate-key", json=body, timeout=10)
        jwks = httpx2.get(f"{api}/licenses/jwks", timeout=10).json()
        doc = verify_response(r.content, r.headers.get("authz-signature"), jwks, nonce="bench-nonce")
        assert doc["meta"]["code"] == "VALID", doc
        basic = base64.b64encode(f"bench-client:{cc['client_secret']}".encode()).decode()
        form = f"grant_type=client_credentials&resource={RESOURCE}&scope=tools%3Aread"
        t = httpx2.post(f"{server.issuer}/token", content=form, timeout=10, headers={
            "content-type": "application/x-www-form-urlencoded", "authorization": f"Basic {basic}"})  # fmt: skip
        assert t.status_code == 200, t.text
        scenarios = {
            "validate": (f"{api}/licenses/actions/validate-key", body, {"content-type": "application/json"}),
            "client_credentials": (f"{server.issuer}/token", form, {
                "content-type": "application/x-www-form-urlencoded", "authorization": f"Basic {basic}"}),
        }  # fmt: skip

        def run(name: str, duration: int) -> WrkResult:
            url, payload, headers = scenarios[name]
            return wrk_post(url, payload, headers, threads=args.threads, connections=args.connections,
                            duration=duration)  # fmt: skip

        if args.warmup:
            for name in scenarios:
                run(name, args.warmup)
        rps: dict[str, list[float]] = {name: [] for name in scenarios}
        bad = {"non2xx": 0, "socket_errors": 0}
        for round_no in range(args.rounds):
            order = list(scenarios) if round_no % 2 == 0 else list(reversed(scenarios))
            for name in order:
                res = run(name, args.duration)
                rps[name].append(res.rps)
                bad["non2xx"] += res.non2xx
                bad["socket_errors"] += res.socket_errors
            print(f"# round {round_no + 1} ({'/'.join(order)}): validate={rps['validate'][-1]:.0f} "
                  f"client_credentials={rps['client_credentials'][-1]:.0f} rps "
                  f"ratio={rps['validate'][-1] / rps['client_credentials'][-1]:.2f}")  # fmt: skip
        ratio = statistics.median(v / c for v, c in zip(rps["validate"], rps["client_credentials"], strict=True))
        print(f"license_validate.validate.rps {statistics.median(rps['validate']):.0f}")
        print(f"license_validate.client_credentials.rps {statistics.median(rps['client_credentials']):.0f}")
        print(f"license_validate.ratio {ratio:.2f}")
        print(f"license_validate.non2xx {bad['non2xx']}")
        print(f"license_validate.socket_errors {bad['socket_errors']}")
        return 0 if bad["non2xx"] == 0 and bad["socket_errors"] == 0 else 1
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
