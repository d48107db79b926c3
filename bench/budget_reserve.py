"""Budget reservations per second from one process against Redis (pipelined ``reserve_many``).

    python bench/budget_reserve.py [--url redis://127.0.0.1:6379/12] [--total 200000] [--batch 1000] [--budgets 3]

Each reservation is one atomic Lua script over ``--budgets`` hard budgets (agent, team, workflow);
``--batch`` scripts travel per round trip. The run is bounded (``--total`` reservations or
``--seconds``), talks to loopback only, uses its own hash tag and deletes its keys afterwards.
The default database is 12, not the tests' 15 (the test fixture flushes 15 before every test).
Prints ``budget.redis.reserve_rps N``.
"""

from __future__ import annotations

import argparse
import secrets
import time
from urllib.parse import urlsplit

import redis

from authz.budgets.model import Budget, Reservation
from authz.budgets.redis_ledger import RedisLedger


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/12")
    p.add_argument("--total", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--budgets", type=int, default=3, choices=(1, 2, 3))
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    host = urlsplit(a.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback Redis only")
    client = redis.Redis.from_url(a.url)
    tag = "bench-" + secrets.token_hex(4)
    ledger = RedisLedger(client, tag=tag)
    kinds = [("agent", "a1"), ("team", "t1"), ("workflow", "w1")][: a.budgets]
    budgets = [Budget(f"b{n}", kind, sid, "calls", 10**12, period="month") for n, (kind, sid) in enumerate(kinds)]
    charges = [(b, 1) for b in budgets]
    ledger.reserve_many([("warmup", charges, 60)])
    done = 0
    started = time.perf_counter()
    deadline = started + a.seconds
    while done < a.total and time.perf_counter() < deadline:
        n = min(a.batch, a.total - done)
        results = ledger.reserve_many([(f"r{done + i}", charges, 60) for i in range(n)])
        assert all(isinstance(r, Reservation) for r in results)
        done += n
    elapsed = time.perf_counter() - started
    status = ledger.status(budgets[0])
    if elapsed < 60 and status.reserved != done + 1:  # holds live 60 s
        raise SystemExit(f"lost holds: {status.reserved} of {done + 1} (was the Redis database flushed meanwhile?)")
    for key in client.scan_iter(match=f"budget:{{{tag}}}:*", count=10_000):
        client.unlink(key)
    client.close()
    print(f"budget.redis.reserve_rps {done / elapsed:.0f}")
    print(f"# {done} reservations x {a.budgets} budgets, batch {a.batch}, {elapsed:.2f}s")


if __name__ == "__main__":
    main()
