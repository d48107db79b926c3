"""Alternating wrk rounds against several token endpoints in one run: only same-run ratios mean anything
on a shared machine, so every target gets the same load right after the other, round after round.

Each target is ``NAME=URL,BASIC,PID`` (BASIC: base64 ``id:secret``; PID: the server's process,
whose CPU time and its descendants' is read from /proc around each measured run). Each round runs
every target once (warm-up run first, unreported), in alternating order (A B, B A, A B, ...) so
neither always follows the other. The wrk script is the peer kit's ``bench.lua`` (form POST with
HTTP Basic, every response checked for ``--expect``).

Prints, per round and target, ``<name>.r<k>.<scenario>.<figure> <value>`` (ok_rps, p50_ms, p99_ms,
cpu_us_per_req: server CPU time per answered request, all threads of all processes of the server;
busiest_thread_us_per_req: the same for its busiest thread, a worker's event loop, which bounds
what one worker can answer; status), then
per target the medians ``<name>.<scenario>.<figure> <median>``, and for each pair of targets the
median of the per-round ratios: ``ratio.<scenario> <a/b ok_rps>``, ``ratio.p99 <a/b p99>``
(below 1: a's tail is shorter), ``ratio.cpu_per_req <a/b>`` and ``ratio.busiest_thread_per_req``;
with more than two targets the lines are ``ratio.<a>_vs_<b>.<...>``. Exit 1 when any run had errors.

    python bench/rounds.py --rounds 3 --duration 8 --warmup 2 --body 'grant_type=...' \\
        --target ours=http://127.0.0.1:9150/token,YmVuY2g6cw==,1234 --target peer=http://127.0.0.1:9400/token,...,5678
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\]):\d+/")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    basic: str
    pid: int


def parse_target(text: str) -> Target:
    name, _, rest = text.partition("=")
    url, basic, pid = rest.split(",")
    if not LOOPBACK.match(url):
        raise SystemExit(f"refusing non-loopback URL {url}")
    return Target(name, url, basic, int(pid))


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (workers, their helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def thread_ticks(pids: list[int]) -> dict[tuple[int, int], int]:
    """utime + stime of every thread of ``pids``, in clock ticks, by (pid, tid)."""
    ticks = {}
    for p in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            continue
        for t in tids:
            try:
                fields = Path(f"/proc/{p}/task/{t}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[(p, t)] = int(fields[11]) + int(fields[12])
    return ticks


def wrk(args: argparse.Namespace, target: Target, label: str, seconds: int, latency: bool) -> dict[str, str]:
    env = {**os.environ, "BENCH_BODY": args.body, "BENCH_AUTH": target.basic, "BENCH_EXPECT": args.expect,
           "BENCH_LABEL": label}  # fmt: skip
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.conns}", f"-d{seconds}s", "-s", args.lua, target.url]
    if latency:
        cmd.insert(1, "--latency")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False).stdout
    figures = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key.startswith(label + "."):
            figures[key[len(label) + 1 :]] = value.strip()
        elif line.startswith("# ") and latency:  # bench.lua's first bad response
            print(line)
    return figures


def measure(args: argparse.Namespace, target: Target, rnd: int) -> dict[str, float]:
    label = f"{target.name}.r{rnd}.{args.scenario}"
    if args.warmup > 0:
        wrk(args, target, label, args.warmup, latency=False)
    pids = descendants(target.pid)
    t0 = thread_ticks(pids)
    figures = wrk(args, target, label, args.duration, latency=True)
    spent = [ticks - t0.get(key, 0) for key, ticks in thread_ticks(pids).items()]
    ok = float(figures.get("ok_rps", 0)) * args.duration
    result = {k: float(figures.get(k, "nan")) for k in ("ok_rps", "p50_ms", "p99_ms")}
    result["cpu_us_per_req"] = sum(spent) / HZ * 1e6 / ok if ok else float("nan")
    # The busiest thread (a worker's event loop, which holds the GIL) bounds what one worker can do.
    result["busiest_thread_us_per_req"] = max(spent, default=0) / HZ * 1e6 / ok if ok else float("nan")
    for key, value in result.items():
        print(f"{label}.{key} {value:.1f}" if key != "p50_ms" else f"{label}.{key} {value:.2f}")
    status = figures.get("status", "ERRORS")
    if status != "OK":
        bad = ", ".join(f"{k} {figures.get(k, '?')}" for k in ("non2xx", "bad_body", "socket_errors"))
        print(f"# {label}: {bad} of {figures.get('requests', '?')} requests")
    print(f"{label}.status {status}", flush=True)
    result["errors"] = 0.0 if status == "OK" else 1.0
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", action="append", required=True, type=parse_target, help="NAME=URL,BASIC,PID")
    p.add_argument("--body", required=True, help="the form body of every request")
    p.add_argument("--expect", default='"access_token"', help="a good 2xx body contains this")
    p.add_argument("--scenario", default="client_credentials")
    p.add_argument("--lua", default=str(Path(os.environ.get("PEER_KIT", "")) / "bench.lua"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    targets: list[Target] = args.target
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"# {args.rounds} alternating rounds of {args.scenario}: {args.threads} threads, {args.conns} connections, "
          f"{args.duration}s (+{args.warmup}s warm-up) each; targets {', '.join(t.name for t in targets)}; "
          f"load average {load}", flush=True)  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
    for rnd in range(1, args.rounds + 1):
        for target in targets if rnd % 2 else list(reversed(targets)):
            results[target.name].append(measure(args, target, rnd))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"# medians over {args.rounds} rounds; load average at the end {load}")
    for name, rows in results.items():
        for key in ("ok_rps", "p50_ms", "p99_ms", "cpu_us_per_req", "busiest_thread_us_per_req"):
            print(f"{name}.{args.scenario}.{key} {statistics.median(r[key] for r in rows):.2f}")
    for i, a in enumerate(targets):
        for b in targets[i + 1 :]:
            prefix = "ratio" if len(targets) == 2 else f"ratio.{a.name}_vs_{b.name}"
            ra, rb = results[a.name], results[b.name]

            def paired(key: str, ra: list[dict[str, float]] = ra, rb: list[dict[str, float]] = rb) -> float:
                return statistics.median(
                    x[key] / y[key] if y[key] else float("nan") for x, y in zip(ra, rb, strict=True)
                )

            print(f"{prefix}.{args.scenario} {paired('ok_rps'):.3f}")
            print(f"{prefix}.p99 {paired('p99_ms'):.3f}")
            print(f"{prefix}.cpu_per_req {paired('cpu_us_per_req'):.3f}")
            print(f"{prefix}.busiest_thread_per_req {paired('busiest_thread_us_per_req'):.3f}")
    errors = sum(r["errors"] for rows in results.values() for r in rows)
    if errors:
        print(f"# RESULT: {errors:.0f} run(s) had errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
