"""Rate limits shared by replicas: the same contract on SQL (SQLite, PostgreSQL) and Redis; one process
is exact, two replicas sharing a store see each other's counts after a sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

from authz.licensing.ratelimit import Limit, RateLimiter, RedisCounts, SharedCounts, SqlCounts
from authz.storage.db import make_engine
from tests.authz.conftest import ASFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
def shared(request: pytest.FixtureRequest, db_url: str) -> Iterator[SharedCounts]:
    if request.param == "sql":
        engine = make_engine(db_url)
        yield SqlCounts(engine)
        engine.dispose()
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        yield RedisCounts(client, ttl=120)
        client.close()


def test_one_process_is_exact_and_replicas_share_counts(shared: SharedCounts) -> None:
    clock = Clock()
    limits = {"key": Limit(5, 60), "ip": Limit(0, 60)}
    a = RateLimiter(shared, limits, clock=clock)
    b = RateLimiter(shared, limits, clock=clock)
    assert [a.hit("key", "k1") for _ in range(5)] == [None] * 5
    refused = a.hit("key", "k1")
    assert refused is not None and refused[1] is True and 1 <= refused[0] <= 60
    assert a.hit("key", "k1") == (refused[0], False)  # announced once per window
    assert a.hit("ip", "1.2.3.4") is None  # 0: no limit
    a.sync()
    assert b.hit("key", "k1") is None  # replica b has not synced yet: the overshoot of one sync interval
    b.sync()  # pushing its count, it learns the total: 5 from a + 1
    assert b.hit("key", "k1") is not None
    bucket = ("key:k1", int(clock.now // 60) * 60)
    assert shared.add({bucket: 0})[bucket] == 6
    clock.now += 60  # the next window starts from zero
    assert a.hit("key", "k1") is None


def test_sql_counts_prune_old_windows(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        counts = SqlCounts(engine)
        counts.add({("key:a", 0): 3, ("key:a", 600): 2})
        counts.prune(300)
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT window_start, count FROM license_rate_limits")).all()
        assert [tuple(r) for r in rows] == [(600, 2)]
    finally:
        engine.dispose()


@pytest.mark.anyio
async def test_the_server_shares_counts_through_redis_when_configured(as_factory: ASFactory, redis_url: str) -> None:
    srv = await as_factory(redis_url=redis_url, license_rate_per_ip=2)
    assert srv.ctx.licensing is not None and isinstance(srv.ctx.licensing.limiter.shared, RedisCounts)
    srv.ctx.licensing.limiter.clock = Clock()  # one window for the whole test, whatever the wall clock does
    body = {"key": "LK-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA"}
    codes = [(await srv.http.post("/api/v1/licenses/actions/validate-key", json=body)).status_code for _ in range(3)]
    assert codes == [422, 422, 429]
    for _ in range(10):  # the server's Redis client times out after 1 s: a loaded machine may need a retry
        try:
            srv.ctx.licensing.limiter.sync()
            break
        except redis.exceptions.RedisError:
            continue
    assert redis.Redis.from_url(redis_url).keys("authz:license-rate:*")
