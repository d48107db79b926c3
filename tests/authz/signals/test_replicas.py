"""Two AS replicas on one PostgreSQL database: a suspension on one wakes a long poll held by the other, and
both serving the same stream at once store each SET once (the stream row lock and the unique outbox key)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest
import sqlalchemy as sa

from authz.app import create_app
from authz.identity.agents import lifecycle as lc
from tests.authz.conftest import AS, ISSUER, ASFactory
from tests.authz.identity.agents.conftest import deps, engines_to_dispose

__all__ = ["engines_to_dispose"]

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def replicas(
    postgres_url: str, engines_to_dispose: list[sa.Engine], as_factory: ASFactory
) -> AsyncIterator[tuple[AS, AS]]:
    """Replica A from the usual factory; replica B another app on the same settings and database."""
    a = await as_factory(database_url=postgres_url)
    app = create_app(a.settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=a.settings.issuer)
    b = AS(app=app, http=http, rs=a.rs, other_rs=a.other_rs, settings=a.settings)
    for srv in (a, b):
        engines_to_dispose.append(srv.ctx.store.engine)  # type: ignore[attr-defined]
    try:
        yield a, b
    finally:
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_a_suspension_on_one_replica_answers_a_poll_held_by_another(replicas: tuple[AS, AS]) -> None:
    a, b = replicas
    auth = (a.rs.client_id, a.rs.client_secret or "")
    created = await b.http.post("/ssf/stream", json={}, auth=auth)
    assert created.status_code == 201
    path = created.json()["delivery"]["endpoint_url"].removeprefix(ISSUER)
    agent = lc.create_agent(deps(a), name="bot", actor="t")
    held = asyncio.create_task(b.http.post(path, json={}, auth=auth, timeout=60))
    await asyncio.sleep(0.3)
    assert not held.done()
    await asyncio.to_thread(lc.suspend_agent, deps(a), agent.id, actor="t")
    # B learns of the fact through the change feed (AUTHZ_CACHE_STALENESS, 0.05 s here), well before the
    # poll's 20 s hold would have ended.
    r: httpx2.Response = await asyncio.wait_for(held, 10)
    assert r.status_code == 200 and len(r.json()["sets"]) == 1


async def test_two_replicas_serving_one_stream_store_each_set_once(replicas: tuple[AS, AS]) -> None:
    a, b = replicas
    auth = (a.rs.client_id, a.rs.client_secret or "")
    created = await a.http.post("/ssf/stream", json={}, auth=auth)
    stream_id = created.json()["stream_id"]
    path = f"/ssf/poll/{stream_id}"
    for n in range(5):
        lc.suspend_agent(deps(a), lc.create_agent(deps(a), name=f"bot{n}", actor="t").id, actor="t")
    answers = await asyncio.gather(
        *(srv.http.post(path, json={"returnImmediately": True}, auth=auth) for srv in (a, b, a, b))
    )
    assert all(len(r.json()["sets"]) == 5 for r in answers)
    engine: sa.Engine = a.ctx.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source_seq, event_type FROM ssf_outbox WHERE stream_id = :s"), {"s": stream_id}
        ).all()
        cursor = conn.execute(sa.text("SELECT cursor FROM ssf_streams WHERE stream_id = :s"), {"s": stream_id}).scalar()
        last = conn.execute(sa.text("SELECT max(seq) FROM revocations")).scalar()
    assert len(rows) == 5 and len(set(rows)) == 5  # one SET per fact, whichever replica stored it first
    assert cursor == last
