"""The durable buffer between acknowledge and flush: one Protocol, SQL staging and Redis Stream.

Contract (``tests/authz/metering/test_buffer_contract.py`` runs it against both):

* ``append`` returns only after the events are durably stored; it reports which ids were new.
  An id already seen within the dedupe window is a duplicate: stored once, never counted twice.
* ``drain`` moves up to ``limit`` buffered events into the SQL sink (events + rollups, one
  transaction) and only then forgets them; a crash anywhere leaves them to be drained again, and
  the sink's unique idempotency ids make the retry a no-op for those already counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from sqlalchemy import Engine, Table, delete, func, select, update

from authz.metering.config import MeteringConfig
from authz.metering.sink import Sink, Staged
from authz.storage.models_metering import MeteringInbox

INBOX = cast(Table, MeteringInbox.__table__)


@dataclass(frozen=True, slots=True)
class Drained:
    taken: int  # buffered events processed (including ones already counted)
    inserted: int  # events newly counted


class Buffer(Protocol):
    def append(self, records: Sequence[tuple[str, str]], now_ms: int) -> set[str]:
        """Durably store ``(idempotency id, payload)`` pairs; return the ids that were new."""
        ...

    def drain(self, limit: int, now_ms: int) -> Drained: ...

    def pending(self) -> int:
        """Events acknowledged but not yet flushed."""
        ...


class SqlBuffer:
    """The embedded default: the ``metering_inbox`` table (SQLite or PostgreSQL)."""

    def __init__(self, sink: Sink, config: MeteringConfig) -> None:
        self.sink = sink
        self.engine: Engine = sink.engine
        self.config = config
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._insert = sink._insert
        self._last_prune_ms = 0

    def append(self, records: Sequence[tuple[str, str]], now_ms: int) -> set[str]:
        if not records:
            return set()
        stmt = (
            self._insert(INBOX)
            .on_conflict_do_nothing(index_elements=["idempotency_id"])
            .returning(INBOX.c.idempotency_id)
        )
        params = [{"idempotency_id": i, "received_at_ms": now_ms, "payload": p} for i, p in records]
        with self.engine.connect() as conn:
            fsync = self.sqlite and self.config.sqlite_fsync
            if fsync:  # WAL + FULL: the commit is fsynced before we acknowledge
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
                conn.commit()
            try:
                new = set(conn.execute(stmt, params).scalars().all())
                conn.commit()
            finally:
                if fsync:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    conn.commit()
        return new

    def drain(self, limit: int, now_ms: int) -> Drained:
        with self.sink.transaction() as conn:
            rows = conn.execute(
                select(INBOX.c.seq, INBOX.c.idempotency_id, INBOX.c.payload, INBOX.c.received_at_ms)
                .where(INBOX.c.flushed_at_ms.is_(None))
                .order_by(INBOX.c.seq)
                .limit(limit)
            ).all()
            inserted = 0
            if rows:
                inserted = self.sink.write(conn, [Staged(r[1], r[2], r[3]) for r in rows], now_ms)
                conn.execute(update(INBOX).where(INBOX.c.seq.in_([r[0] for r in rows])).values(flushed_at_ms=now_ms))
            if now_ms - self._last_prune_ms >= self.config.prune_every_s * 1000:
                self._last_prune_ms = now_ms
                cutoff = now_ms - self.config.dedupe_s * 1000
                conn.execute(delete(INBOX).where(INBOX.c.flushed_at_ms.is_not(None), INBOX.c.received_at_ms < cutoff))
        return Drained(len(rows), inserted)

    def pending(self) -> int:
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(INBOX).where(INBOX.c.flushed_at_ms.is_(None))).scalar()
        return int(n or 0)
