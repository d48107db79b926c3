"""The DPoP replay cache's group commit (:mod:`authz.oauth.group_commit`): concurrent proofs written
together still count once each (RFC 9449 §11.1), on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from authz.oauth.group_commit import GroupCommit
from authz.storage.db import make_engine
from authz.storage.sql import SqlStore
from dpop import DpopKey
from tests.authz.conftest import ASFactory
from tests.authz.oauth.test_dpop_token import cc, error_of, proof

pytestmark = pytest.mark.anyio


async def _concurrent_proofs(as_factory: ASFactory, **settings: Any) -> None:
    """Eight requests at once: four distinct proofs, each sent twice. Each proof gets one token."""
    a = await as_factory(dev_mode=True, **settings)
    reg = a.machine_client()
    key = DpopKey.generate()
    proofs = [proof(key) for _ in range(4)]
    answers = await asyncio.gather(*(cc(a, reg, headers) for headers in proofs + proofs))
    for first, second in zip(answers[:4], answers[4:], strict=True):
        assert sorted([first.status_code, second.status_code]) == [200, 400]
        refused = first if first.status_code == 400 else second
        assert error_of(refused) == "invalid_dpop_proof"
    assert error_of(await cc(a, reg, proofs[0])) == "invalid_dpop_proof"  # and later, too
    assert (await cc(a, reg, proof(key))).status_code == 200


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_concurrent_replays_count_once_sqlite(as_factory: ASFactory) -> None:
    await _concurrent_proofs(as_factory)


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_concurrent_replays_count_once_postgres(postgres_url: str, as_factory: ASFactory) -> None:
    await _concurrent_proofs(as_factory, database_url=postgres_url)


@pytest.mark.requirement("rfc9449:jti-replay")
async def test_concurrent_replays_count_once_redis(redis_url: str, as_factory: ASFactory) -> None:
    await _concurrent_proofs(as_factory, redis_url=redis_url)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_jti_writer_takes_over_expired_rows_only(backend: str, sqlite_url: str, request: Any) -> None:
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    store = SqlStore(engine)
    writer = store.jti_writer()
    try:
        now = int(time.time())
        assert writer.remember([("live", now + 60), ("old", now - 1)], now - 10) == {"live", "old"}
        # "live" is still live, "old" expired: taken over; "new" is new
        assert writer.remember([("live", now + 60), ("old", now + 60), ("new", now + 60)], now) == {"old", "new"}
        assert not store.remember_jti("new", now + 60, now)  # the one-row path sees the batch's rows
    finally:
        writer.close()
        engine.dispose()


@pytest.mark.parametrize("inline", [True, False])
async def test_group_commit_answers_each_request_and_fails_a_failed_batch(inline: bool) -> None:
    seen: set[str] = set()
    batches: list[int] = []

    def write(rows: Sequence[tuple[str, int]], now: int) -> set[str]:
        batches.append(len(rows))
        if any(key == "boom" for key, _ in rows):
            raise RuntimeError("store down")
        won = {key for key, _ in rows if key not in seen}
        seen.update(won)
        return won

    group = GroupCommit(write, inline=inline)
    try:
        keys = ["a", "b", "a", "c", "b"]
        answers = await asyncio.gather(*(group.first_use(k, 100, 1) for k in keys))
        assert answers == [True, True, False, True, False]  # the first of a key in a batch wins
        assert sum(batches) == 3  # a key twice in one batch is written once
        assert await group.first_use("a", 100, 1) is False
        with pytest.raises(RuntimeError, match="store down"):
            await asyncio.gather(group.first_use("boom", 100, 1), group.first_use("d", 100, 1))
    finally:
        group.close()
