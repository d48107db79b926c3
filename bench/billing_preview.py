"""Billing benchmarks: an invoice preview over a month of 10M events, and closing 1,000 invoices.

    python bench/billing_preview.py [--events 10000000] [--agents 1000] [--customers 1000]
                                    [--backends sqlite,postgres] [--runs 40] [--profile N]

Usage is generated straight into the metering rollups as the flusher keeps them (daily and monthly
sums per agent and event type; hourly rows for the days a preview reads by the hour), since the
preview reads only rollups: ``--events`` events over the previous calendar month for one customer
with ``--agents`` agents. Each billing period's usage (``billing_usage``) is then built from those
rollups once, as the flusher does when it first meets a period (``--unbuilt``: skip that, and
measure previews summed from the metering rollups instead).
Prints, per backend:

* ``billing.<db>.preview_ms p50/p95`` of ``BillingService.preview`` on the hybrid plan (per-agent
  token allowance: one group per agent), calendar period (monthly rollups) and anniversary period
  starting mid-month (hourly edges + daily rollups); after set-up the process's heap is frozen
  (``gc.freeze()``), as the server does once started (``--no-freeze``: not);
* ``billing.<db>.close_per_s``: ``close_due()`` finalizing ``--customers`` customers' invoices
  (one agent each, hybrid plan), with the count checked.

``--profile N``: after the timed runs, profile ``--runs`` more previews of each period under cProfile
and print the N functions with the most own time and the N with the most cumulative time (ms per
preview; cProfile roughly doubles the time of small calls, so compare shares, not the sum).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from metering_ingest import fresh_db  # bench/ is on sys.path when run as a script
from sqlalchemy import text

from authz.app import freeze_startup_heap
from authz.billing import rollup
from authz.billing.examples import SHAPES
from authz.billing.service import BillingService
from authz.core.crypto import Keyring, b64url
from authz.metering.sink import DAILY, DIMS, MONTHLY, ROLLUPS, SUMS, calendar, dims_key

KEK = b64url(bytes(32))  # a fixed key: the bench stores no secret worth protecting


def previous_month() -> tuple[int, int]:
    now = datetime.now(UTC)
    this = datetime(now.year, now.month, 1, tzinfo=UTC)
    prev = datetime(this.year - (this.month == 1), (this.month - 2) % 12 + 1, 1, tzinfo=UTC)
    return int(prev.timestamp()), int(this.timestamp())


def seed(
    engine: Any, customers: list[tuple[str, list[str]]], start: int, end: int, per_hour: int, hourly_days: set[int]
) -> int:
    """The rollups of every agent and hour: tokens.consumed (``per_hour - 2`` events, 1,000 tokens each),
    one call.completed and one outcome.meeting_booked. Daily and monthly rows are written directly
    (the sums the flusher keeps); hourly rows only for ``hourly_days`` (UTC day starts): the only
    hours a preview reads (a period's partial first and last days)."""
    n = 0
    hourly: list[dict[str, Any]] = []
    daily: dict[tuple[Any, ...], list[int]] = {}
    monthly: dict[tuple[Any, ...], list[int]] = {}
    with engine.begin() as conn:
        for customer, agents in customers:
            for i, agent in enumerate(agents):
                kinds = (
                    ("tokens.consumed", "anthropic", "claude-sonnet-4-5", "tokens", per_hour - 2, 800, 200),
                    ("call.completed", "", "", "calls", 1, 0, 0),
                    ("outcome.meeting_booked", "", "", "count", 1, 0, 0),
                )
                for etype, provider, model, unit, count, inp, out in kinds:
                    dims = (
                        etype,
                        agent,
                        "",
                        f"wf_{i % 5}",
                        customer,
                        "https://mcp.example.com/mcp",
                        "book",
                        provider,
                        model,
                        unit,
                    )
                    key = dims_key(dims)
                    tokens = etype == "tokens.consumed"
                    sums = [
                        count,
                        count * (inp + out) if tokens else count,
                        count * inp,
                        count * out,
                        0,
                        0,
                        0,
                        count * 5_400_000_000 if tokens else 0,
                        count if tokens else 0,
                        0,
                    ]
                    for bucket in range(start, end, 3600):
                        day, month = calendar(bucket)
                        n += count
                        for acc in (
                            daily.setdefault((day, key, month, dims), [0] * len(SUMS)),
                            monthly.setdefault((month, key, dims), [0] * len(SUMS)),
                        ):
                            acc[:] = [a + b for a, b in zip(acc, sums, strict=True)]
                        if day in hourly_days:
                            hourly.append(
                                {
                                    "bucket": bucket,
                                    "dims_key": key,
                                    "day": day,
                                    "month": month,
                                    **dict(zip(DIMS, dims, strict=True)),
                                    **dict(zip(SUMS, sums, strict=True)),
                                }
                            )
        for table, rows in (
            (ROLLUPS, hourly),
            (
                DAILY,
                [
                    {
                        "day": d,
                        "dims_key": k,
                        "month": m,
                        **dict(zip(DIMS, dims, strict=True)),
                        **dict(zip(SUMS, v, strict=True)),
                    }
                    for (d, k, m, dims), v in daily.items()
                ],
            ),
            (
                MONTHLY,
                [
                    {"month": m, "dims_key": k, **dict(zip(DIMS, dims, strict=True)), **dict(zip(SUMS, v, strict=True))}
                    for (m, k, dims), v in monthly.items()
                ],
            ),
        ):
            for at in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[at : at + 20_000])
        if engine.dialect.name == "postgresql":
            for name in ("metering_rollups", "metering_rollups_daily", "metering_rollups_monthly"):
                conn.execute(text(f"ANALYZE {name}"))
    return n


def build(svc: BillingService, customer: str, at: int) -> None:
    """Build the billing period usage of ``customer``'s period holding ``at`` (what a flush does)."""
    sub = svc.store.subscription_at(customer, at)
    version = svc.store.version(sub.plan_version_id)
    period = svc.period(svc.store.customer(customer), sub, version, at)
    rollup.build_now(svc.engine, sub.id, customer, period, int(time.time()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def profile(label: str, runs: int, top: int, call: Any) -> None:
    """``call`` ``runs`` times under cProfile: the ``top`` functions by own and cumulative time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        call()
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = [(tt, ct, nc, func) for func, (_cc, nc, tt, ct, _callers) in stats.items()]
    for title, at in (("own", 0), ("cumulative", 1)):
        print(f"  {label}: top {top} by {title} time, ms per preview (calls per preview)")
        for row in sorted(rows, key=lambda r: r[at], reverse=True)[:top]:
            file, line, name = row[3]
            where = f"{os.path.basename(file)}:{line}:{name}" if line else name
            print(f"    {row[0] * 1000 / runs:7.2f} own {row[1] * 1000 / runs:7.2f} cum {row[2] / runs:9.0f}  {where}")


def bench_preview(
    kind: str, events: int, agents: int, runs: int, unbuilt: bool, freeze: bool = True, top: int = 0
) -> None:
    _url, engine = fresh_db(kind)
    start, end = previous_month()
    hours = (end - start) // 3600
    per_hour = max(3, round(events / (agents * hours)))
    t0 = time.perf_counter()
    mid = start + 14 * 86_400 + 3 * 3600  # an anniversary period from here: hours of its first day, then days
    n = seed(
        engine, [("bench", [f"agt_{i:04d}" for i in range(agents)])], start, end, per_hour, {mid // 86_400 * 86_400}
    )
    print(f"billing.{kind}.generated_events {n} ({agents} agents, {hours} h, {time.perf_counter() - t0:.0f} s)")
    svc = BillingService(engine, Keyring.from_text(KEK))
    svc.store.create_plan("hybrid", "Hybrid", SHAPES["hybrid"])
    svc.store.create_plan("hybrid-anniversary", "Hybrid", SHAPES["hybrid"] | {"anchor": "anniversary"})
    svc.create_customer(id="bench", name="Bench", currency="USD")
    svc.create_customer(id="bench-anniv", name="Bench", currency="USD")
    svc.store.subscribe("bench", "hybrid", start)
    for label, customer, at in (("calendar", "bench", start + 86_400), ("anniversary", "bench", mid)):
        if label == "anniversary":  # same usage, a period from mid-month (hourly edges + days)
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE billing_subscriptions SET ends_at = :e WHERE customer_id = 'bench'"), {"e": mid}
                )
            svc.store.subscribe("bench", "hybrid-anniversary", mid)
        if not unbuilt:
            build(svc, customer, at)
        doc = svc.preview(customer, at)
        if freeze:  # what the server does once started (authz.app.freeze_startup_heap)
            freeze_startup_heap()
        times, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            again = svc.preview(customer, at)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            assert again["etag"] == doc["etag"]
        groups = len(doc["lines"][2]["groups"])
        print(
            f"billing.{kind}.preview_ms.{label} p50 {statistics.median(times):.1f} p95 {percentile(times, 0.95):.1f} "
            f"(this process's CPU p50 {statistics.median(cpu):.1f} p95 {percentile(cpu, 0.95):.1f}; total "
            f"{doc['total']} USD, {groups} agent groups, {runs} runs; load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        if top:
            profile(f"billing.{kind}.preview.{label}", runs, top, lambda c=customer, a=at: svc.preview(c, a))
    engine.dispose()


def bench_close(kind: str, customers: int, unbuilt: bool) -> None:
    _url, engine = fresh_db(kind)
    start, end = previous_month()
    seed(engine, [(f"cust_{i:04d}", [f"agt_c{i:04d}"]) for i in range(customers)], start, start + 24 * 3600, 5, set())
    svc = BillingService(engine, Keyring.from_text(KEK), clock=lambda: end + 13 * 3600)
    svc.store.create_plan("hybrid", "Hybrid", SHAPES["hybrid"])
    for i in range(customers):
        svc.create_customer(id=f"cust_{i:04d}", name=f"Customer {i}", currency="USD")
        svc.store.subscribe(f"cust_{i:04d}", "hybrid", start)
        if not unbuilt:
            build(svc, f"cust_{i:04d}", start)
    t0, c0 = time.perf_counter(), time.process_time()
    closed = svc.close_due()
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    created = sum(1 for _doc, c in closed if c)
    assert created == customers, (created, customers)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM billing_invoices")).scalar() == customers
    again = svc.close_due()
    assert again == [], "a second pass must find nothing to close"
    print(
        f"billing.{kind}.close_per_s {created / took:.0f} ({created} invoices in {took:.1f} s; this process's CPU "
        f"{cpu:.1f} s = {created / cpu:.0f} invoices per CPU second; load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--parts", default="preview,close")
    ap.add_argument("--unbuilt", action="store_true", help="no billing period usage: sum the metering rollups")
    ap.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after set-up (the server freezes)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile previews: print the top N functions")
    args = ap.parse_args()
    for kind in args.backends.split(","):
        if "preview" in args.parts:
            bench_preview(kind, args.events, args.agents, args.runs, args.unbuilt, not args.no_freeze, args.profile)
        if "close" in args.parts:
            bench_close(kind, args.customers, args.unbuilt)


if __name__ == "__main__":
    main()
