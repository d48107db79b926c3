"""Token issuance with and without DPoP: the server's CPU per request, alternating rounds, one server.

The same ``authz serve`` (one worker), the same client (``client_credentials`` with
``client_secret_basic``), the same wrk script (``bench/dpop.lua``) as ``bench/as_issuance.sh``'s
DPoP rounds; each round also reads the server process's CPU time (user + system, every thread,
from ``/proc``) before and after, so the figure is CPU per answered request, which other
processes on a shared machine change far less than requests per second. Loopback only; each
wrk run is bounded by ``--duration`` (and a timeout).

    python bench/dpop_issuance_cpu.py [--rounds 3] [--duration 8] [--connections 32]
    AUTHZ_REDIS_URL=redis://127.0.0.1:6379/14 python bench/dpop_issuance_cpu.py   # replay cache in Redis
    AUTHZ_DPOP_REPLICA_NONCES=1 python bench/dpop_issuance_cpu.py                  # in-memory replay cache
    python bench/dpop_issuance_cpu.py --alg EdDSA                                   # Ed25519 proofs (default ES256)

Figures: ``cpu.<variant>.us`` (median µs of server CPU per 2xx answer), ``cpu.ratio`` = bearer's /
DPoP's (what ``ours.dpop.ratio`` would be on an otherwise idle core), and the rps of each round.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RESOURCE = "http://127.0.0.1:9500/mcp"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "authz", *args], env=env, check=True, capture_output=True, text=True).stdout


def field(out: str, name: str) -> str:
    match = re.search(rf"^{name}: *(\S+)", out, re.M)
    if match is None:
        raise SystemExit(f"no {name} in {out}")
    return match.group(1)


def wrk(url: str, env: dict[str, str], args: argparse.Namespace, label: str) -> dict[str, str]:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "-s",
        str(ROOT / "bench/dpop.lua"),
        url,
    ]
    env = {**env, "BENCH_LABEL": label, "BENCH_THREADS": str(args.threads)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.duration + 60).stdout
    figures = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(label + "."))
    return {k[len(label) + 1 :]: v for k, v in figures.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--alg", default="ES256", help="the proofs' algorithm (ES256, EdDSA, ...)")
    p.add_argument("--port", type=int, default=int(os.environ.get("AUTHZ_BENCH_PORT", "9151")))
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    issuer = f"http://127.0.0.1:{args.port}"
    data = tempfile.mkdtemp(prefix="authz-dpop-cpu.")
    env = {**os.environ, "AUTHZ_ISSUER": issuer, "AUTHZ_DATA_DIR": data}
    cli(env, "resources", "add", RESOURCE, "--scopes", "tools:read tools:write", "--name", "bench")
    secret = field(
        cli(env, "clients", "add", "--client-id", "bench-client", "--grant-type", "client_credentials"), "client_secret"
    )
    basic = base64.b64encode(f"bench-client:{secret}".encode()).decode()
    serve = ["serve", "--port", str(args.port), "--workers", "1", "--no-migrate", "--log-level", "warning"]
    log = open(f"{data}/server.log", "w")
    server = subprocess.Popen([PY, "-m", "authz", *serve], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{issuer}/.well-known/oauth-authorization-server", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        print(
            f"# authz {head.stdout.strip()}, proofs {args.alg}, load {open('/proc/loadavg').read().split()[:3]}",
            flush=True,
        )
        token_url = f"{issuer}/token"
        base_env = {**env, "BENCH_BASIC": basic, "BENCH_RESOURCE": RESOURCE}
        cpu: dict[str, list[float]] = {"bearer": [], "dpop": []}
        rps: dict[str, list[float]] = {"bearer": [], "dpop": []}
        n = (args.duration + 2) * 5000
        for r in range(1, args.rounds + 1):
            probe = Path(data, "probe.txt")
            subprocess.run(
                [PY, str(ROOT / "bench/make_dpop_proofs.py"), token_url, "1", str(probe), "--alg", args.alg], check=True
            )
            nonce = probe_nonce(token_url, basic, probe.read_text().strip())
            proofs = Path(data, "proofs.txt")
            extra = ["--alg", args.alg, *(["--nonce", nonce] if nonce else [])]
            subprocess.run(
                [PY, str(ROOT / "bench/make_dpop_proofs.py"), token_url, str(n), str(proofs), *extra], check=True
            )
            for variant in ("bearer", "dpop"):
                run_env = {**base_env, "BENCH_PROOFS": str(proofs) if variant == "dpop" else ""}
                before = cpu_seconds(server.pid)
                figures = wrk(token_url, run_env, args, f"{variant}.r{r}")
                spent = cpu_seconds(server.pid) - before
                ok = float(figures["ok_rps"]) * args.duration
                if figures.get("status") != "OK" or ok <= 0:
                    raise SystemExit(f"{variant} round {r}: {figures}")
                cpu[variant].append(spent / ok * 1e6)
                rps[variant].append(float(figures["ok_rps"]))
                print(f"{variant}.r{r}.ok_rps {figures['ok_rps']}  cpu_us {spent / ok * 1e6:.0f}", flush=True)
        b, d = statistics.median(cpu["bearer"]), statistics.median(cpu["dpop"])
        print(f"cpu.bearer.us {b:.0f}\ncpu.dpop.us {d:.0f}\ncpu.extra_us {d - b:.0f}\ncpu.ratio {b / d:.3f}")
        rb, rd = statistics.median(rps["bearer"]), statistics.median(rps["dpop"])
        paired = statistics.median(x / y for x, y in zip(rps["dpop"], rps["bearer"], strict=True))
        print(f"rps.bearer {rb:.0f}\nrps.dpop {rd:.0f}\nrps.ratio {rd / rb:.3f}\nrps.ratio_paired {paired:.3f}")
        print(f"# load {open('/proc/loadavg').read().split()[:3]}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def probe_nonce(token_url: str, basic: str, proof: str) -> str | None:
    """The server's DPoP nonce when it asks for one (``use_dpop_nonce``), else None."""
    body = f"grant_type=client_credentials&resource={urllib.parse.quote(RESOURCE, safe='')}".encode()
    req = urllib.request.Request(token_url, body, {"Authorization": f"Basic {basic}", "DPoP": proof})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers.get("DPoP-Nonce")
    except urllib.error.HTTPError as err:
        return err.headers.get("DPoP-Nonce")


if __name__ == "__main__":
    main()
