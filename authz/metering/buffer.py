"""The durable buffer between acknowledge and flush: one Protocol, SQL staging and Redis Stream.

Contract (``tests/authz/metering/test_buffer_contract.py`` runs it against both):

* ``append`` returns only after the events are durably stored; it reports which ids were new.
  An id already seen within the dedupe window is a duplicate: stored once, never counted twice.
* ``drain`` moves up to ``limit`` buffered events into the SQL sink (events + rollups, one
  transaction) and only then forgets them; a crash anywhere leaves them to be drained again, and
  the sink's unique idempotency ids make the retry a no-op for those already counted.
* A buffer whose ``direct`` is true counts in ``append`` itself (events + rollups committed before
  it returns; nothing is left to drain): SQLite, see :class:`SqlBuffer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Table, delete, func, select, text
from sqlalchemy.exc import IntegrityError

from authz.metering import bulk
from authz.metering.config import MeteringConfig
from authz.metering.events import encode_payload
from authz.metering.sink import Sink, Staged
from authz.storage.models.metering import MeteringInbox

INBOX = cast(Table, MeteringInbox.__table__)
INBOX_COLUMNS = ("idempotency_id", "received_at_ms", "payload")
# Take the oldest pending rows and mark them flushed in one statement (the caller holds the flush lock;
# the same transaction writes the events, so a crash undoes the mark with the rest).
TAKE = text(
    "UPDATE metering_inbox SET flushed_at_ms = :now WHERE idempotency_id IN (SELECT idempotency_id"
    " FROM metering_inbox WHERE flushed_at_ms IS NULL ORDER BY received_at_ms LIMIT :limit)"
    " RETURNING received_at_ms, idempotency_id, payload"
)


@dataclass(frozen=True, slots=True)
class Drained:
    taken: int  # buffered events processed (including ones already counted)
    inserted: int  # events newly counted


class Buffer(Protocol):
    direct: bool  # append counts the events itself (nothing waits for a flush)

    def append(self, payloads: Sequence[list[Any]], now_ms: int) -> set[str]:
        """Durably store validated payloads (:data:`~authz.metering.events.PAYLOAD` order, distinct
        ids; they may be changed in place); return the ids that were new."""
        ...

    def drain(self, limit: int, now_ms: int) -> Drained: ...

    def pending(self) -> int:
        """Events acknowledged but not yet flushed."""
        ...


class SqlBuffer:
    """The SQL buffer: the ``metering_inbox`` table on PostgreSQL; none on SQLite (``direct``).

    SQLite (one node, one writer at a time) counts each batch in the request's own transaction:
    ``metering_events`` (``ON CONFLICT DO NOTHING RETURNING``: the ids newly counted are the ids
    reported new) and the rollups, committed (``synchronous=FULL`` with ``sqlite_fsync``) before
    ``append`` returns. Acknowledged = durable = counted, once per id: one write per event instead of
    three (inbox insert, its ``UPDATE ... RETURNING`` at flush, the events insert). The inbox is
    still drained there, for rows an earlier version left. PostgreSQL keeps the inbox: replicas
    append concurrently without contending on rollup rows, and one flusher at a time counts.
    """

    def __init__(self, sink: Sink, config: MeteringConfig) -> None:
        self.sink = sink
        self.engine: Engine = sink.engine
        self.config = config
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.direct = self.sqlite
        self._last_prune_ms = 0

    def append(self, payloads: Sequence[list[Any]], now_ms: int) -> set[str]:
        if not payloads:
            return set()
        if self.direct:
            return self._count(payloads, now_ms)
        return self._stage([(p[0], encode_payload(p)) for p in payloads], now_ms)

    def _count(self, payloads: Sequence[list[Any]], now_ms: int) -> set[str]:
        """SQLite: count the events now, in one transaction committed before this returns."""
        with self.engine.connect() as conn:
            fsync = self.config.sqlite_fsync
            if fsync:  # WAL + FULL: the commit is fsynced before we acknowledge
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
                conn.commit()
            try:
                with self.sink.transaction(conn):
                    new = self.sink.count(conn, payloads, now_ms)
                return set(new)
            finally:
                if fsync:
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    conn.commit()

    def _stage(self, records: Sequence[tuple[str, str]], now_ms: int) -> set[str]:
        """Durably store the records (each write below is one atomic commit) and return the new ids.

        Autocommit: the INSERT commits by itself, so a batch is one round trip (no BEGIN/COMMIT),
        durable (PostgreSQL: synchronous_commit; SQLite: synchronous=FULL) once it returns. It is
        first tried as a plain INSERT, all or nothing: almost every batch is new, and PostgreSQL's
        ``ON CONFLICT`` (speculative insertion) costs ~25% of the statement. A batch holding an id
        already stored fails whole, and goes again as ``ON CONFLICT DO NOTHING RETURNING``.
        """
        # Sorted by id: concurrent batches that share ids wait on each other in one order, never in a cycle.
        rows = sorted((eid, now_ms, payload) for eid, payload in records)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            fsync = self.sqlite and self.config.sqlite_fsync
            if fsync:  # WAL + FULL: the commit is fsynced before we acknowledge
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
            try:
                try:
                    self._write(conn, rows, ())
                    return {eid for eid, _ in records}
                except IntegrityError:
                    return set(self._write(conn, rows, ("idempotency_id",)))
            finally:
                if fsync:
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")

    def _write(self, conn: Connection, rows: list[tuple[str, int, str]], conflict: tuple[str, ...]) -> list[str]:
        """One atomic insert: one statement, or one transaction when SQLite needs several statements."""
        returning = "idempotency_id" if conflict else ""
        if not (self.sqlite and len(rows) * len(INBOX_COLUMNS) > bulk.SQLITE_MAX_VARIABLES):
            return bulk.insert(conn, INBOX, INBOX_COLUMNS, rows, conflict=conflict, returning=returning)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            new = bulk.insert(conn, INBOX, INBOX_COLUMNS, rows, conflict=conflict, returning=returning)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
        return new

    def drain(self, limit: int, now_ms: int) -> Drained:
        with self.sink.transaction() as conn:
            rows = sorted(conn.execute(TAKE, {"now": now_ms, "limit": limit}).all(), key=itemgetter(0, 1))
            inserted = 0
            if rows:
                inserted = self.sink.write(conn, [Staged(r[1], r[2], r[0]) for r in rows], now_ms)
            if now_ms - self._last_prune_ms >= self.config.prune_every_s * 1000:
                self._last_prune_ms = now_ms
                cutoff = now_ms - self.config.dedupe_s * 1000
                conn.execute(delete(INBOX).where(INBOX.c.flushed_at_ms.is_not(None), INBOX.c.received_at_ms < cutoff))
        return Drained(len(rows), inserted)

    def pending(self) -> int:
        with self.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(INBOX).where(INBOX.c.flushed_at_ms.is_(None))).scalar()
        return int(n or 0)
