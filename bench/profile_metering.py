"""Where metering ingest's CPU time goes: batches of events through the ASGI app, one process.

No server, no network: each ``POST /api/v1/metering/events`` is one direct ASGI call of the app that
``authz serve`` runs (SQLite in a fresh data directory, or ``--redis URL``), with the bodies the
Python SDK's batcher sends (``--batch`` ``call.completed`` events, or ``--mix`` with a share of
``tokens.consumed``). The background flusher is off; each pass drains the buffer itself
(``MeteringService.flush``), so a figure is the whole cost of an event: acknowledge and flush.

Two passes: an unprofiled one (CPU time per event of the whole process, split into ingest and
flush), then (unless ``--top 0``) a ``cProfile`` one with the handler run inline on the event loop thread (the profile
sees one thread) and the time grouped by stage and by function (self time).

    python bench/profile_metering.py [--batches 100] [--batch 1000] [--redis URL] [--mix] [--random-ids] [--top 20]
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
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.inproc import asgi_request, stage_totals  # noqa: E402

PY = sys.executable
ISSUER = "http://127.0.0.1:9150"
SCOPES = "metering:read metering:write"

STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("event validation", ("authz/metering/events.py", "authz/metering/aliases.py", "/re/", "_strptime")),
    ("pricing", ("authz/metering/pricing.py", "authz/metering/rates.py")),
    ("flush (sink, rollups)", ("authz/metering/sink.py",)),
    ("buffer", ("authz/metering/buffer.py", "authz/metering/redis_buffer.py", "/redis/")),
    ("bulk SQL", ("authz/metering/bulk.py", "sqlalchemy", "sqlite3")),
    ("metering service", ("authz/metering/",)),
    ("billing / budgets hooks", ("authz/billing/", "authz/budgets/")),
    ("route handler", ("authz/admin/metering.py",)),
    ("body parsing (JSON, pydantic)", ("guard/jsonload.py", "/json/", "pydantic")),
    ("admin API glue + auth", ("authz/admin/", "authz/oauth/", "joserfc", "cryptography")),
    ("Starlette", ("/starlette/", "/anyio/")),
    ("asyncio", ("/asyncio/",)),
]


def _cli(*args: str) -> str:
    return subprocess.run([PY, "-m", "authz", *args], check=True, capture_output=True, text=True).stdout


def _field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    raise SystemExit(f"no {name} in: {out}")


def bodies(n: int, size: int, mix: bool, random_ids: bool = False) -> list[bytes]:
    """Request bodies shaped as the SDK's batcher sends them: time-ordered ids, millisecond timestamps
    (``random_ids``: UUID4 ids and microsecond timestamps, as a client without the batcher may send)."""
    out, prefix, serial = [], uuid.uuid4().hex[:16], 0
    for b in range(n):
        events = []
        for i in range(size):
            event: dict[str, Any] = {"type": "call.completed", "agent": f"agt_{i % 7}", "tool": f"tool_{i % 20}"}
            if mix and i % 4 == 0:
                usage = {"input_tokens": 1200 + b, "output_tokens": 300}
                event = {"type": "tokens.consumed", "agent": f"agt_{i % 7}", "model": "claude-sonnet-4-5",
                         "provider": "anthropic", "usage": usage}  # fmt: skip
            now = datetime.now(UTC)
            if random_ids:
                event["id"] = str(uuid.uuid4())
                event["timestamp"] = now.isoformat().replace("+00:00", "Z")
            else:
                serial += 1
                event["id"] = f"{int(now.timestamp() * 1000):012x}{prefix}{serial:08x}"
                event["timestamp"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            events.append(event)
        out.append(json.dumps({"events": events}).encode())
    return out


class Caller:
    def __init__(self, app: Any, bearer: str) -> None:
        self.app = app
        self.bearer = bearer

    async def post(self, path: str, body: bytes, ctype: bytes = b"application/json", auth: bytes = b"") -> bytes:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:9150"), (b"content-type", ctype),
                        (b"content-length", str(len(body)).encode()),
                        (b"authorization", auth or f"Bearer {self.bearer}".encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9150), "state": {},
        }  # fmt: skip
        status, _headers, answer = await asgi_request(self.app, scope, body)
        if status != 200:
            raise SystemExit(f"{path}: {status} {answer[:300]!r}")
        return answer


def stage_table(stats: pstats.Stats, n: int) -> list[tuple[str, float]]:
    """Self time per stage (µs/event), largest first."""
    return sorted(stage_totals(stats, STAGES, n).items(), key=lambda x: -x[1])


async def main_async(args: argparse.Namespace) -> None:
    data = tempfile.mkdtemp(prefix="authz-profile-metering.")
    os.environ.update(AUTHZ_ISSUER=ISSUER, AUTHZ_DATA_DIR=data, AUTHZ_ACCESS_TOKEN_TTL="3600",
                      AUTHZ_METERING_FLUSH_INTERVAL_S="3600", AUTHZ_METERING_FLUSH_BATCH_SIZE="10000000")  # fmt: skip
    if args.redis:
        os.environ["AUTHZ_REDIS_URL"] = args.redis
        import redis

        redis.Redis.from_url(args.redis).flushdb()
    _cli("migrate")
    admin = _cli("admin-client", "create", "--name", "bench", "--scopes", SCOPES)
    client_id, secret = _field(admin, "client_id"), _field(admin, "client_secret")
    from authz.asgi import create

    app = create()
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan_in.get, lifespan_out.put)
    )
    await lifespan_in.put({"type": "lifespan.startup"})
    assert (await lifespan_out.get())["type"] == "lifespan.startup.complete"
    caller = Caller(app, "")
    form = f"grant_type=client_credentials&resource={ISSUER}/api/v1&scope=metering%3Awrite".encode()
    basic = b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
    caller.bearer = json.loads(await caller.post("/token", form, b"application/x-www-form-urlencoded", basic))[
        "access_token"
    ]
    svc = app.state.ctx.metering
    n_events = args.batches * args.batch
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    load = open("/proc/loadavg").read().split()[:3]
    backend = "redis" if args.redis else "sqlite"
    print(f"# authz {head.stdout.strip()}, Python {sys.version.split()[0]}, {backend}, loadavg {load}")

    async def ingest(batch_bodies: list[bytes]) -> None:
        for body in batch_bodies:
            await caller.post("/api/v1/metering/events", body)

    await ingest(bodies(3, args.batch, args.mix, args.random_ids))  # warm up
    svc.flush()
    work = bodies(args.batches, args.batch, args.mix, args.random_ids)
    cpu0 = time.process_time()
    await ingest(work)
    cpu1 = time.process_time()
    svc.flush()
    cpu2 = time.process_time()
    ingest_us, flush_us = (cpu1 - cpu0) / n_events * 1e6, (cpu2 - cpu1) / n_events * 1e6
    print(
        f"\nmetering_cpu.{backend}.us_per_event {ingest_us + flush_us:.1f} (ingest {ingest_us:.1f} + flush"
        f" {flush_us:.1f}; {1e6 / (ingest_us + flush_us):,.0f} events per CPU second; {n_events:,} events in"
        f" batches of {args.batch}, unprofiled, whole process)"
    )

    if args.top <= 0:  # figures only, no profile
        await lifespan_in.put({"type": "lifespan.shutdown"})
        await lifespan_out.get()
        await task
        return
    import anyio.to_thread

    async def inline(func: Any, *a: Any, **_: Any) -> Any:
        return func(*a)

    real = anyio.to_thread.run_sync
    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    work = bodies(args.batches, args.batch, args.mix, args.random_ids)
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    await ingest(work)
    svc.flush()
    profile.disable()
    anyio.to_thread.run_sync = real  # type: ignore[assignment]
    stats = pstats.Stats(profile)
    table = stage_table(stats, n_events)
    total = sum(t for _, t in table)
    print("\n| stage | µs/event (profiled) | share |\n|---|---:|---:|")
    for stage, us in table:
        print(f"| {stage} | {us:.2f} | {us / total:.0%} |")
    print(f"\nTop {args.top} functions by self time:\n")
    print("| function | calls/event | self µs/event |\n|---|---:|---:|")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]  # type: ignore[attr-defined]
    for (filename, line, fn), (_cc, nc, tt, _ct, _callers) in rows:
        short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        print(f"| `{short}:{line}:{fn}` | {nc / n_events:.3f} | {tt / n_events * 1e6:.2f} |")
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan_out.get()
    await task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--redis", default="", help="buffer in this Redis (AUTHZ_REDIS_URL); it is flushed")
    p.add_argument("--mix", action="store_true", help="a quarter of the events are priced tokens.consumed")
    p.add_argument("--random-ids", action="store_true", help="UUID4 ids (not time-ordered), microsecond timestamps")
    p.add_argument("--top", type=int, default=20)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
