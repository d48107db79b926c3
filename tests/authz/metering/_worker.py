"""Run in child processes (spawned): ingest a range of events against a shared backend."""

from __future__ import annotations

import sys
import time

from authz.metering import MeteringConfig, MeteringService
from authz.storage.db import make_engine


def ingest_range(db_url: str, redis_url: str | None, ids: list[str], ts_ms: int, batch: int) -> int:
    client = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
    engine = make_engine(db_url)
    svc = MeteringService(engine, MeteringConfig(redis_claim_idle_ms=0), redis_client=client)
    from tests.authz.metering.conftest import event

    accepted = 0
    try:
        for i in range(0, len(ids), batch):
            res = svc.ingest([event(e, ts_ms, quantity=1) for e in ids[i : i + batch]])
            accepted += res.accepted
            svc.flush()  # concurrent flushers across processes
    finally:
        engine.dispose()
        if client is not None:
            client.close()
    return accepted


def ack_then_hang(db_url: str, redis_url: str | None, n: int) -> None:
    """Ingest n events, say ACK, and wait to be killed (never flushes)."""
    client = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
    svc = MeteringService(make_engine(db_url), MeteringConfig(), redis_client=client)
    from tests.authz.metering.conftest import event

    now = int(time.time() * 1000)
    res = svc.ingest([event(f"kill-{i}", now) for i in range(n)])
    print(f"ACK {res.accepted}", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    ack_then_hang(sys.argv[1], sys.argv[2] or None, int(sys.argv[3]))
