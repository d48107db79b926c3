"""One contract, every buffer: SQL staging on PostgreSQL, direct counting on SQLite, the Redis Stream.

A direct buffer (SQLite) counts in ``ingest`` itself, so its flushes find nothing: the assertions
below hold for both, counting what ``ingest`` counted plus what ``flush`` inserted.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from authz.metering import MeteringService
from authz.metering.buffer import SqlBuffer
from authz.metering.events import encode_payload, validate_payloads
from authz.metering.redis_buffer import RedisBuffer
from authz.metering.sink import Sink
from tests.authz.metering import _worker
from tests.authz.metering.conftest import Factory, event, totals

ROOT = Path(__file__).resolve().parents[3]


def now_ms() -> int:
    return int(time.time() * 1000)


def flushed(svc: MeteringService, acknowledged: int) -> int:
    """Events newly counted by ``svc.flush()``, plus the ``acknowledged`` ones a direct buffer counted
    at ingest (a buffered one counts them in this flush)."""
    inserted = svc.flush().inserted
    if svc.buffer.direct:
        assert inserted == 0
        return acknowledged
    return inserted


def test_same_batch_twice_counts_once(make_service: Factory) -> None:
    svc = make_service()
    batch = [event(f"e{i}", now_ms(), quantity=i) for i in range(50)]
    first = svc.ingest(batch)
    assert (first.accepted, first.duplicates, first.rejected) == (50, [], [])
    second = svc.ingest(batch)
    assert second.accepted == 0
    assert sorted(second.duplicates) == sorted(e["id"] for e in batch)
    assert flushed(svc, 50) == 50
    third = svc.ingest(batch)  # after the flush: still a duplicate, still not counted
    assert third.accepted == 0 and len(third.duplicates) == 50
    svc.flush()
    assert totals(svc.engine) == (50, 50, 50)
    assert sum(r["quantity"] for r in svc.usage(0, 2**40)) == sum(range(50))


def test_duplicates_inside_one_batch_are_reported(make_service: Factory) -> None:
    svc = make_service()
    res = svc.ingest([event("a", now_ms()), event("b", now_ms()), event("a", now_ms())])
    assert res.accepted == 2 and res.duplicates == ["a"]
    svc.flush()
    assert totals(svc.engine) == (2, 2, 2)


def test_acknowledged_events_survive_a_dropped_service(make_service: Factory) -> None:
    svc = make_service()
    assert svc.ingest([event(f"x{i}", now_ms()) for i in range(20)]).accepted == 20
    direct = svc.buffer.direct
    del svc  # "crash" between acknowledge and flush: nothing was flushed
    fresh = make_service()
    assert (fresh.pending(), totals(fresh.engine)[0]) == ((0, 20) if direct else (20, 0))
    assert flushed(fresh, 20) == 20
    assert fresh.flush().inserted == 0
    assert totals(fresh.engine) == (20, 20, 20)


def test_killed_process_loses_nothing_and_duplicates_nothing(
    make_service: Factory, backend: tuple[str, str, str | None]
) -> None:
    _name, db_url, redis_url = backend
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.authz.metering._worker", db_url, redis_url or "", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ACK 30"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    svc = make_service()
    svc.flush()
    again = svc.ingest([event(f"kill-{i}", now_ms()) for i in range(30)])  # the sender retries after the crash
    assert again.accepted == 0 and len(again.duplicates) == 30
    svc.flush()
    assert totals(svc.engine) == (30, 30, 30)


def test_flush_retried_after_a_crash_mid_flush_does_not_double_count(
    make_service: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = make_service()
    batch = [event(f"m{i}", now_ms(), quantity=2) for i in range(40)]
    original = Sink.insert

    def insert_then_crash(self: Sink, conn: Any, *args: Any) -> list[str]:
        original(self, conn, *args)
        raise RuntimeError("crash after writing, before commit")

    if svc.buffer.direct:  # counted at ingest: the crash fails the request, nothing is acknowledged
        monkeypatch.setattr(Sink, "insert", insert_then_crash)
        with pytest.raises(RuntimeError):
            svc.ingest(batch)
        monkeypatch.undo()
        assert totals(svc.engine) == (0, 0, 0)
        assert svc.ingest(batch).accepted == 40  # the client retries
    else:
        svc.ingest(batch)
        monkeypatch.setattr(Sink, "insert", insert_then_crash)
        with pytest.raises(RuntimeError):
            svc.flush()
        monkeypatch.undo()
        assert totals(svc.engine) == (0, 0, 0)
        assert make_service().flush().inserted == 40
    assert svc.flush().inserted == 0
    assert totals(svc.engine) == (40, 40, 40)
    assert sum(r["quantity"] for r in svc.usage(0, 2**40)) == 80


def test_many_threads_with_overlapping_ids_give_exact_totals(make_service: Factory) -> None:
    services = [make_service() for _ in range(3)]
    ts = now_ms()
    accepted: list[int] = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        svc = services[k % len(services)]
        got = 0
        for start in range(0, 300, 25):  # every sender sends ids 0..299: heavy overlap
            ids = [f"t{(i + k * 7) % 300}" for i in range(start, start + 25)]
            got += svc.ingest([event(i, ts, quantity=3) for i in ids]).accepted
            if start % 100 == 0:
                svc.flush()
        with lock:
            accepted.append(got)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    services[0].flush()
    assert sum(accepted) == 300
    assert totals(services[0].engine) == (300, 300, 300)
    assert sum(r["quantity"] for r in services[0].usage(0, 2**40)) == 900


def test_many_processes_with_overlapping_ids_give_exact_totals(
    make_service: Factory, backend: tuple[str, str, str | None]
) -> None:
    _name, db_url, redis_url = backend
    ts = now_ms()
    id_sets = [[f"p{(i + k * 40) % 200}" for i in range(120)] for k in range(3)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        accepted = pool.starmap(_worker.ingest_range, [(db_url, redis_url, ids, ts, 20) for ids in id_sets])
    svc = make_service()
    svc.flush()
    distinct = len({i for ids in id_sets for i in ids})
    assert sum(accepted) == distinct
    assert totals(svc.engine) == (distinct, distinct, distinct)


def test_background_flusher_flushes_on_its_cadence_and_on_close(make_service: Factory) -> None:
    svc = make_service(flush_interval_s=0.05, flush_batch_size=10)
    svc.start()
    svc.ingest([event(f"b{i}", now_ms()) for i in range(25)])
    deadline = time.monotonic() + 30
    while totals(svc.engine)[0] < 25 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert totals(svc.engine)[0] == 25
    svc.ingest([event(f"c{i}", now_ms()) for i in range(5)])
    svc.close()  # flush on shutdown
    assert totals(svc.engine) == (30, 30, 30)
    assert svc.pending() == 0


def test_a_batch_larger_than_one_sqlite_statement_is_stored_whole(make_service: Factory) -> None:
    svc = make_service(max_batch=20_000)
    batch = [event(f"big{i}", now_ms()) for i in range(12_000)]  # 36,000 values: two SQLite INSERTs
    assert svc.ingest(batch).accepted == 12_000
    assert svc.ingest(batch[-5:]).duplicates == [e["id"] for e in batch[-5:]]
    assert flushed(svc, 12_000) == 12_000
    assert totals(svc.engine) == (12_000, 12_000, 12_000)


def test_events_an_earlier_version_buffered_are_still_counted_once(make_service: Factory) -> None:
    """Upgrades: SQLite inbox rows (counted directly now) and Redis entries with the former
    ``i`` + ``p`` fields (one ``p`` field now) are drained like the current ones, once."""
    svc = make_service()
    payloads, _ = validate_payloads(
        [event(f"old{i}", now_ms(), quantity=5) for i in range(3)], now_ms(), 60_000, 60_000
    )
    records = [(p[0], encode_payload(p)) for p in payloads]
    if isinstance(svc.buffer, SqlBuffer):
        svc.buffer._stage(records, now_ms())  # what SqlBuffer.append did before SQLite counted directly
    else:
        assert isinstance(svc.buffer, RedisBuffer)
        svc.buffer._ensure_group()
        for eid, payload in records:  # what the APPEND script did before
            svc.buffer.client.set(svc.config.redis_dedupe_prefix + eid, "1", ex=svc.config.dedupe_s)
            svc.buffer.client.xadd(svc.buffer.stream, {"i": eid, "p": payload})
    assert svc.pending() == 3
    assert svc.flush().inserted == 3
    assert svc.ingest([event("old0", now_ms(), quantity=5)]).accepted == 0
    assert svc.flush().inserted == 0
    assert totals(svc.engine) == (3, 3, 3)
    assert sum(r["quantity"] for r in svc.usage(0, 2**40)) == 15
