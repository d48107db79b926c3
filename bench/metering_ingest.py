"""Metering benchmarks: durable ingestion throughput, flush lag, usage query over many events.

    python bench/metering_ingest.py [--events 20000] [--query-events 10000000] [--backends sqlite,postgres,redis]
                                    [--parts ingest,lag,query]

Prints ``metering.<backend>.ingest_eps.batch100 N``, ``...batch1000`` (each followed by the
``flush_eps`` of draining what it ingested), ``metering.<backend>.flush_lag_p99_ms`` (with the
interval) and ``visible_lag_p99_ms`` (until the flush committed), and ``metering.query.<granularity>_ms``
for a usage query over ``--query-events`` events generated straight into the hourly rollups (the
query reads only rollups). PostgreSQL runs get a scratch database, dropped at exit.
"""

from __future__ import annotations

import argparse
import atexit
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

import migrations
from authz.metering import MeteringConfig, MeteringService
from authz.metering.sink import (
    DAILY,
    DAILY_COLUMNS,
    DIMS,
    MONTHLY,
    MONTHLY_COLUMNS,
    ROLLUPS,
    SUMS,
    calendar,
    dims_key,
)
from authz.storage.db import make_engine

PG = os.environ.get("AUTHZ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("AUTHZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def make_events(n: int, prefix: str) -> list[dict[str, Any]]:
    ts = iso(int(time.time() * 1000) - 60_000)
    out = []
    for i in range(n):
        if i % 2:
            out.append(
                {
                    "id": f"{prefix}-{i}",
                    "type": "tokens.consumed",
                    "timestamp": ts,
                    "agent": f"agt_{i % 50}",
                    "team": f"team_{i % 5}",
                    "mcp_server": "https://mcp.example.com/mcp",
                    "tool": "search",
                    "provider": "openai",
                    "model": "gpt-4o" if i % 4 == 1 else "gpt-4o-mini",
                    "usage": {"input_tokens": 1000 + i % 500, "output_tokens": 100, "cache_read_tokens": 200},
                }
            )
        else:
            out.append(
                {
                    "id": f"{prefix}-{i}",
                    "type": "call.completed",
                    "timestamp": ts,
                    "agent": f"agt_{i % 50}",
                    "team": f"team_{i % 5}",
                    "mcp_server": "https://mcp.example.com/mcp",
                    "tool": "search",
                    "status": "ok",
                    "latency_ms": i % 200,
                }
            )
    return out


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_db(kind: str) -> tuple[str, Any]:
    if kind == "postgres":
        import psycopg

        name = f"authz_bench_{os.getpid()}"
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {name}")
        url = PG.rsplit("/", 1)[0] + "/" + name
        atexit.register(_drop_database, name)  # leftover databases cost later runs (autovacuum, disk)
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    migrations.upgrade(url)
    return url, make_engine(url)


def service(backend: str) -> tuple[MeteringService, Any]:
    _url, engine = fresh_db("postgres" if backend == "postgres" else "sqlite")
    client = None
    if backend == "redis":
        import redis

        client = redis.Redis.from_url(REDIS)
        client.flushdb()
    return MeteringService(engine, MeteringConfig(), redis_client=client), client


def bench_ingest(backend: str, n: int) -> None:
    for batch in (100, 1000):
        svc, client = service(backend)
        events = make_events(n, f"{backend}{batch}")
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            res = svc.ingest(events[i : i + batch])
            assert res.accepted == len(events[i : i + batch]), res.rejected[:3]
        eps = n / (time.perf_counter() - t0)
        print(f"metering.{backend}.ingest_eps.batch{batch} {eps:.0f}", flush=True)
        t0 = time.perf_counter()
        flushed = svc.flush().inserted
        if svc.buffer.direct:  # SQLite: counted by ingest itself, nothing to flush
            print(f"metering.{backend}.flush_eps.batch{batch} n/a (counted at ingest)", flush=True)
        else:
            print(f"metering.{backend}.flush_eps.batch{batch} {flushed / (time.perf_counter() - t0):.0f}", flush=True)
        svc.engine.dispose()
        if client is not None:
            client.close()


def bench_flush_lag(backend: str, interval: float, seconds: float, rate: int) -> None:
    """Ingest ``rate`` events/s in batches of 100 with the background flusher on.

    ``flush_lag`` = ``flushed_at_ms - received_at_ms`` (``flushed_at_ms`` is when the flush of the
    event's chunk started); ``visible_lag`` adds that chunk's flush time: when the event's commit was
    done, i.e. when usage queries could see it.
    """
    svc, client = service(backend)
    svc.config = MeteringConfig(flush_interval_s=interval, flush_batch_size=100_000)
    drain = svc.buffer.drain
    done_ms: dict[int, int] = {}

    def timed_drain(limit: int, now_ms: int) -> Any:
        result = drain(limit, now_ms)
        done_ms[now_ms] = int(time.time() * 1000)
        return result

    svc.buffer.drain = timed_drain  # type: ignore[method-assign]
    svc.start()
    events = make_events(int(rate * seconds), f"lag{backend}")
    t_start = time.perf_counter()
    for i in range(0, len(events), 100):
        svc.ingest(events[i : i + 100])
        target = t_start + (i + 100) / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    svc.close()
    with svc.engine.connect() as conn:
        rows = conn.execute(text("SELECT flushed_at_ms, received_at_ms FROM metering_events")).all()
    lags = [flushed - received for flushed, received in rows]
    # SQLite counts at ingest (flushed_at_ms = received_at_ms, no drain): visible when ingest returned.
    visible = [done_ms.get(flushed, flushed) - received for flushed, received in rows]
    q, v = statistics.quantiles(lags, n=100), statistics.quantiles(visible, n=100)
    print(f"metering.{backend}.flush_lag_p50_ms {q[49]:.0f}")
    print(f"metering.{backend}.flush_lag_p99_ms {q[98]:.0f} (interval {interval * 1000:.0f} ms, {rate} events/s)")
    print(f"metering.{backend}.visible_lag_p99_ms {v[98]:.0f} (max {max(visible)})")
    svc.engine.dispose()
    if client is not None:
        client.close()


def bench_query(total_events: int, kind: str) -> None:
    """Generate ``total_events`` events straight into hourly rollups (90 days, 200 dimension tuples)."""
    url, engine = fresh_db(kind)
    hours = 90 * 24
    tuples = [
        (
            "tokens.consumed",
            f"agt_{a}",
            f"team_{a % 10}",
            f"wf_{a % 4}",
            f"cust_{a % 3}",
            "https://mcp.example.com/mcp",
            ["search", "fetch"][a % 2],
            "openai",
            ["gpt-4o", "gpt-4o-mini", "o3", "gpt-5"][a % 4],
            "tokens",
        )
        for a in range(200)
    ]
    per_row = max(1, total_events // (hours * len(tuples)))
    start = int(time.time()) // 3600 * 3600 - hours * 3600
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    n = 0
    with engine.begin() as conn:
        for h in range(hours):
            bucket = start + h * 3600
            day, month = calendar(bucket)
            for dims in tuples:
                count = per_row
                n += count
                rows.append(
                    {
                        "bucket": bucket,
                        "dims_key": dims_key(dims),
                        "day": day,
                        "month": month,
                        **dict(
                            zip(
                                DIMS,
                                dims,
                                strict=True,
                            )
                        ),
                        "count": count,
                        "quantity": count * 1100,
                        "input_tokens": count * 1000,
                        "output_tokens": count * 100,
                        "cache_read_tokens": 0,
                        "cache_write_tokens": 0,
                        "latency_ms": 0,
                        "cost_pusd": count * 3_500_000_000,
                        "priced": count,
                        "unpriced": 0,
                    }
                )
            if len(rows) >= 20_000:
                conn.execute(ROLLUPS.insert(), rows)
                rows = []
        if rows:
            conn.execute(ROLLUPS.insert(), rows)
        for table, columns in ((DAILY, DAILY_COLUMNS), (MONTHLY, MONTHLY_COLUMNS)):  # what the flusher keeps
            keep = ", ".join(c for c in columns if c not in SUMS)
            sums = ", ".join(f"sum({c})" for c in SUMS)
            conn.execute(
                text(
                    f"INSERT INTO {table.name} ({keep}, {', '.join(SUMS)}) "
                    f"SELECT {keep}, {sums} FROM metering_rollups GROUP BY {keep}"
                )
            )
        if kind == "postgres":
            for table_name in ("metering_rollups", "metering_rollups_daily", "metering_rollups_monthly"):
                conn.execute(text(f"ANALYZE {table_name}"))
    took = time.perf_counter() - t0
    print(f"metering.query.{kind}.generated_events {n} ({hours * len(tuples)} hourly rollup rows, {took:.1f} s)")
    svc = MeteringService(engine)
    end = start + hours * 3600
    for granularity, group_by in (("day", ["team"]), ("month", ["customer", "model"]), ("hour", ["agent"])):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = svc.usage(start, end, granularity, group_by)
            times.append(time.perf_counter() - t0)
        assert sum(r["count"] for r in result) == n
        label = f"{granularity}_by_{'_'.join(group_by)}"
        print(f"metering.query.{kind}.{label}_ms {min(times) * 1000:.0f} (rows {len(result)})", flush=True)
    engine.dispose()
    del url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--query-events", type=int, default=10_000_000)
    ap.add_argument("--backends", default="sqlite,postgres,redis")
    ap.add_argument("--lag-interval", type=float, default=1.0)
    ap.add_argument("--lag-seconds", type=float, default=10.0)
    ap.add_argument("--lag-rate", type=int, default=5_000)
    ap.add_argument("--parts", default="ingest,lag,query", help="which benchmarks to run (comma-separated)")
    args = ap.parse_args()
    backends = args.backends.split(",")
    parts = args.parts.split(",")
    if "ingest" in parts:
        for b in backends:
            bench_ingest(b, args.events)
    if "lag" in parts:
        for b in backends:
            bench_flush_lag(b, args.lag_interval, args.lag_seconds, args.lag_rate)
    if "query" in parts:
        for kind in ("sqlite", "postgres") if "postgres" in backends else ("sqlite",):
            bench_query(args.query_events, kind)


if __name__ == "__main__":
    main()
