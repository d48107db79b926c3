"""Metering fixtures: a service factory per buffer backend (SQL staging on SQLite/PostgreSQL, Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from authz.metering import MeteringConfig, MeteringService
from authz.storage.db import make_engine

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]
Factory = Callable[..., MeteringService]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def event(eid: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """A valid call.completed event unless ``fields`` say otherwise."""
    ev: dict[str, Any] = {"id": eid, "type": "call.completed", "timestamp": iso(ts_ms), "agent": "agt_1"}
    ev.update(fields)
    return ev


def tokens(eid: str, ts_ms: int, model: str = "gpt-4o", provider: str = "openai", **fields: Any) -> dict[str, Any]:
    """A tokens.consumed event: ``*_tokens`` keywords go to ``usage``, the others are event fields."""
    u = {"input_tokens": 1000, "output_tokens": 100}
    u.update({k: fields.pop(k) for k in list(fields) if k.endswith("_tokens")})
    return event(eid, ts_ms, type="tokens.consumed", model=model, provider=provider, usage=u, **fields)


def totals(engine: Engine) -> tuple[int, int, int]:
    """(events rows, distinct ids, rollup count sum)."""
    with engine.connect() as conn:
        n, distinct = conn.execute(text("SELECT count(*), count(DISTINCT idempotency_id) FROM metering_events")).one()
        rolled = conn.execute(text("SELECT coalesce(sum(count), 0) FROM metering_rollups")).scalar()
    return int(n), int(distinct), int(rolled or 0)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str | None]]:
    """(name, database URL, redis URL or None). Redis uses a SQLite sink."""
    name = request.param
    if name == "redis":
        yield name, request.getfixturevalue("sqlite_url"), request.getfixturevalue("redis_url")
    else:
        yield name, request.getfixturevalue(f"{name}_url"), None


@pytest.fixture
def make_service(backend: tuple[str, str, str | None]) -> Iterator[Factory]:
    """Build services on one backend (several = several processes/replicas); all closed at teardown."""
    _name, db_url, redis_url = backend
    engines: list[Engine] = []
    clients: list[Any] = []

    def factory(clock: Callable[[], float] = time.time, **config: Any) -> MeteringService:
        config.setdefault("redis_claim_idle_ms", 0)
        engine = make_engine(db_url)
        engines.append(engine)
        client = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            clients.append(client)
        return MeteringService(engine, MeteringConfig(**config), redis_client=client, clock=clock)

    yield factory
    for c in clients:
        c.close()
    for e in engines:
        e.dispose()
