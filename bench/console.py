"""Console page speed: the usage page over 10M metered events, rendered in process (ASGI, no network).

    python bench/console.py [--events 10000000] [--db postgres|sqlite] [--rounds 40]

Generates ``--events`` events straight into the hourly, daily and monthly rollups (90 days x 200
dimension tuples, what the metering flusher would have written; the page reads only rollups plus one
indexed MAX over the event table), starts the app with a signed-in console admin (development mode),
then GETs the usage page in several shapes in alternating rounds and prints each shape's p50 and p95
(``console.usage.<shape>.p95_ms``) and the page's share of the whole run. PostgreSQL runs get a
scratch database, dropped at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authz.app import create_app
from authz.core.settings import Settings
from authz.metering.sink import DAILY, DAILY_COLUMNS, DIMS, MONTHLY, MONTHLY_COLUMNS, ROLLUPS, SUMS, calendar, dims_key
from bench.metering_ingest import fresh_db

DAYS = 90
SHAPES = {
    "7d_by_agent_calls": "/console/usage?by=agent&metric=calls&range=7d",
    "90d_by_model_cost": "/console/usage?by=model&metric=cost&range=90d",
    "24h_by_team_tokens": "/console/usage?by=team&metric=tokens&range=24h",
    "30d_by_customer_cost": "/console/usage?by=customer&metric=cost&range=30d",
}


def generate(engine: Any, total: int, kind: str) -> int:
    hours, agents = DAYS * 24, 200
    tuples = [
        ("tokens.consumed", f"agt_{a}", f"team_{a % 10}", f"wf_{a % 4}", f"cust_{a % 3}",
         "https://mcp.example.com/mcp", ["search", "fetch"][a % 2], "openai",
         ["gpt-4o", "gpt-4o-mini", "o3", "gpt-5"][a % 4], "tokens")
        for a in range(agents)
    ]  # fmt: skip
    per_row = max(1, total // (hours * agents))
    start = int(time.time()) // 3600 * 3600 - (hours - 1) * 3600
    n, rows = 0, []
    with engine.begin() as conn:
        for h in range(hours):
            bucket = start + h * 3600
            day, month = calendar(bucket)
            for dims in tuples:
                n += per_row
                rows.append({
                    "bucket": bucket, "dims_key": dims_key(dims), "day": day, "month": month,
                    **dict(zip(DIMS, dims, strict=True)), "count": per_row, "quantity": per_row * 1100,
                    "input_tokens": per_row * 1000, "output_tokens": per_row * 100, "cache_read_tokens": 0,
                    "cache_write_tokens": 0, "latency_ms": 0, "cost_pusd": per_row * 3_500_000_000,
                    "priced": per_row, "unpriced": 0,
                })  # fmt: skip
            if len(rows) >= 20_000:
                conn.execute(ROLLUPS.insert(), rows)
                rows = []
        if rows:
            conn.execute(ROLLUPS.insert(), rows)
        for table, columns in ((DAILY, DAILY_COLUMNS), (MONTHLY, MONTHLY_COLUMNS)):
            keep = ", ".join(c for c in columns if c not in SUMS)
            sums = ", ".join(f"sum({c})" for c in SUMS)
            conn.execute(text(f"INSERT INTO {table.name} ({keep}, {', '.join(SUMS)}) "
                              f"SELECT {keep}, {sums} FROM metering_rollups GROUP BY {keep}"))  # fmt: skip
        if kind == "postgres":
            for name in ("metering_rollups", "metering_rollups_daily", "metering_rollups_monthly"):
                conn.execute(text(f"ANALYZE {name}"))
    return n


async def run(url: str, rounds: int) -> None:
    data_dir = Path(tempfile.mkdtemp())
    settings = Settings(issuer="http://127.0.0.1:9199", data_dir=data_dir, database_url=url, dev_mode=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=settings.issuer) as http:
            r = await http.get("/console/usage", follow_redirects=True)  # dev mode signs "demo" in as admin
            assert r.status_code == 200 and "Usage and cost" in r.text, r.text[:300]
            times: dict[str, list[float]] = {k: [] for k in SHAPES}
            cpu: dict[str, list[float]] = {k: [] for k in SHAPES}
            print(f"console.load_average_before {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
            for _ in range(rounds):  # alternating rounds: load on the machine hits every shape alike
                for shape, path in SHAPES.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = await http.get(path)
                    times[shape].append((time.perf_counter() - t0) * 1000)
                    cpu[shape].append((time.process_time() - c0) * 1000)
                    assert r.status_code == 200 and "<svg" in r.text
            print(f"console.load_average_after {os.getloadavg()[0]:.1f}")
            for shape, ts in times.items():
                ts.sort()
                p95 = ts[int(len(ts) * 0.95) - 1]
                c95 = sorted(cpu[shape])[int(len(ts) * 0.95) - 1]
                print(f"console.usage.{shape}.p50_ms {statistics.median(ts):.0f}")
                print(f"console.usage.{shape}.p95_ms {p95:.0f} (this process's CPU p95 {c95:.0f} ms)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    url, engine = fresh_db(args.db)
    t0 = time.perf_counter()
    n = generate(engine, args.events, args.db)
    print(f"console.usage.generated_events {n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    engine.dispose()
    asyncio.run(run(url, args.rounds))


if __name__ == "__main__":
    main()
