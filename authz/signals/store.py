"""SQL for the SSF transmitter: streams, the fan-out of revocation facts into the outbox, acks.

Fan-out reads ``revocations`` after the stream's ``cursor`` (on PostgreSQL that table's ``seq`` order is its
commit order, see ``authz.storage.sql``), signs the SETs, inserts them with ON CONFLICT DO NOTHING on
``(stream_id, source_seq, event_type)`` and moves the cursor forward, in one transaction that first locks
the stream row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time). Two replicas
serving the same stream therefore never deliver a fact twice nor skip one. A new stream starts at cursor 0
but only facts younger than the longest access token lifetime are sent: an older cutoff can no longer
match a live token.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from authz.signals.sets import Fact
from authz.storage.db import is_postgres, make_sessionmaker
from authz.storage.models import Agent, Revocation
from authz.storage.models.signals import SsfOutbox, SsfStream

STREAM_ID = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16)
MAX_TOKEN_LIFETIME = 3600  # the longest access_token_ttl the settings allow (seconds)
FAN_OUT_BATCH = 500
SEEN_RESOLUTION = 60  # seconds: receiver activity is recorded this coarsely (inactivity is counted in hours)


@dataclass(frozen=True)
class Batch:
    """SETs signed for one stream from the facts up to ``cursor`` (``more``: facts remain after it)."""

    stream_id: str
    cursor: int
    rows: list[dict[str, Any]]
    more: bool


# (fact) -> [(event type, jti, SET)]
SetMaker = Callable[[SsfStream, Fact], list[tuple[str, str, str]]]


class SignalStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        self._insert = pg_insert if is_postgres(engine) else sqlite_insert
        self._seen: dict[str, int] = {}  # stream_id -> when this process last recorded its activity

    # -- streams -------------------------------------------------------------------------------
    def create_stream(self, *, client_id: str, audience: str, method: str, events: list[str], description: str,
                      now: int) -> SsfStream:  # fmt: skip
        stream = SsfStream(
            stream_id=secrets.token_hex(16),
            client_id=client_id,
            audience=audience,
            method=method,
            events_requested=events,
            description=description,
            status="enabled",
            reason=None,
            cursor=0,
            created_at=now,
            updated_at=now,
            seen_at=now,
        )
        with self.sessions.begin() as s:
            s.add(stream)
        return stream

    def streams(self, client_id: str) -> Sequence[SsfStream]:
        with self.sessions() as s:
            return s.scalars(
                select(SsfStream).where(SsfStream.client_id == client_id).order_by(SsfStream.created_at)
            ).all()

    def count_streams(self, client_id: str) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).where(SsfStream.client_id == client_id)) or 0)

    def stream(self, client_id: str, stream_id: str) -> SsfStream | None:
        """The stream when it belongs to ``client_id`` (another receiver's stream is "not found"; so is an id
        unlike the ones we mint, which never reaches SQL)."""
        if not STREAM_ID.fullmatch(stream_id):
            return None
        with self.sessions() as s:
            row = s.get(SsfStream, stream_id)
            return row if row is not None and row.client_id == client_id else None

    def update_stream(self, client_id: str, stream_id: str, values: dict[str, Any]) -> SsfStream | None:
        with self.sessions.begin() as s:
            s.execute(
                update(SsfStream)
                .where(SsfStream.stream_id == stream_id, SsfStream.client_id == client_id)
                .values(**values)
            )
            row = s.get(SsfStream, stream_id)
            return row if row is not None and row.client_id == client_id else None

    def delete_stream(self, client_id: str, stream_id: str) -> bool:
        with self.sessions.begin() as s:
            s.execute(delete(SsfOutbox).where(SsfOutbox.stream_id == stream_id))
            n = s.execute(
                delete(SsfStream).where(SsfStream.stream_id == stream_id, SsfStream.client_id == client_id)
            ).rowcount  # type: ignore[attr-defined]
            return bool(n)

    def purge_inactive(self, before: int) -> int:
        """Delete streams no receiver has touched since ``before`` (SSF ``inactivity_timeout``)."""
        with self.sessions.begin() as s:
            stale = s.scalars(select(SsfStream.stream_id).where(SsfStream.seen_at < before)).all()
            if not stale:
                return 0
            s.execute(delete(SsfOutbox).where(SsfOutbox.stream_id.in_(stale)))
            s.execute(delete(SsfStream).where(SsfStream.stream_id.in_(stale)))
            return len(stale)

    # -- the outbox ----------------------------------------------------------------------------
    def fresh(self, stream_id: str, make: SetMaker, now: int) -> Batch | None:
        """Read only: signed SETs for the facts after the stream's cursor (one batch), or None.

        The caller delivers them at once and then :meth:`persist` s the batch: a poll never waits on a
        write transaction (on SQLite the writer of the revocation may still hold the lock)."""
        with self.sessions() as s:
            stream = s.get(SsfStream, stream_id)
            if stream is None:
                return None
            rows = s.scalars(
                select(Revocation).where(Revocation.seq > stream.cursor).order_by(Revocation.seq).limit(FAN_OUT_BATCH)
            ).all()
            if not rows:
                return None
            facts = _facts(s, rows, now) if stream.status != "disabled" else []  # disabled: nothing is held
            values = [
                {
                    "stream_id": stream_id,
                    "jti": jti,
                    "source_seq": fact.seq,
                    "event_type": event_type,
                    "token": token,
                    "created_at": now,
                }
                for fact in facts
                for event_type, jti, token in make(stream, fact)
            ]
        return Batch(stream_id, rows[-1].seq, values, len(rows) == FAN_OUT_BATCH)

    def persist(self, batch: Batch) -> None:
        """Write a batch to the outbox and move the cursor forward, under the stream's row lock. Idempotent
        across replicas: a SET for a (fact, event) already stored is not stored again, the cursor never
        moves back."""
        with self.sessions.begin() as s:
            locked = select(SsfStream).where(SsfStream.stream_id == batch.stream_id).with_for_update()
            stream = s.scalars(locked).first()
            if stream is None:
                return
            if batch.rows:
                stmt = self._insert(SsfOutbox).values(batch.rows)
                s.execute(stmt.on_conflict_do_nothing(index_elements=["stream_id", "source_seq", "event_type"]))
            stream.cursor = max(stream.cursor, batch.cursor)

    def fan_out(self, stream_id: str, make: SetMaker, now: int) -> int:
        """Turn every new revocation fact into stored SETs for the stream; returns how many SETs were signed."""
        added = 0
        while (batch := self.fresh(stream_id, make, now)) is not None:
            self.persist(batch)
            added += len(batch.rows)
            if not batch.more:
                break
        return added

    def add_set(self, stream_id: str, event_type: str, jti: str, token: str, now: int) -> None:
        """An event not derived from a fact (the verification event)."""
        with self.sessions.begin() as s:
            s.add(SsfOutbox(stream_id=stream_id, jti=jti, source_seq=None, event_type=event_type, token=token,
                            created_at=now))  # fmt: skip

    def pending(self, stream_id: str, limit: int) -> tuple[list[tuple[str, str]], bool]:
        """Unacknowledged SETs, oldest first: ([(jti, SET)], more available)."""
        with self.sessions() as s:
            rows = s.execute(
                select(SsfOutbox.jti, SsfOutbox.token)
                .where(SsfOutbox.stream_id == stream_id)
                .order_by(SsfOutbox.id)
                .limit(limit + 1)
            ).all()
        return [(r[0], r[1]) for r in rows[:limit]], len(rows) > limit

    def ack(self, stream_id: str, jtis: Sequence[str], now: int) -> None:
        """Forget acknowledged SETs and record the receiver's activity (``seen_at`` at most once a minute
        per process: a poll that acknowledges nothing then costs no write)."""
        if not jtis and self._seen.get(stream_id, 0) > now - SEEN_RESOLUTION:
            return
        with self.sessions.begin() as s:
            if jtis:
                s.execute(delete(SsfOutbox).where(SsfOutbox.stream_id == stream_id, SsfOutbox.jti.in_(list(jtis))))
            s.execute(update(SsfStream).where(SsfStream.stream_id == stream_id).values(seen_at=now))
        if len(self._seen) > 100_000:
            self._seen.clear()
        self._seen[stream_id] = now


def _facts(s: Session, rows: Sequence[Revocation], now: int) -> list[Fact]:
    horizon = now - MAX_TOKEN_LIFETIME
    live = [r for r in rows if r.created_at >= horizon]
    agent_ids = {r.value for r in live if r.kind == "agent"}
    ended: dict[str, int] = {}
    if agent_ids:
        query = select(Agent.id, Agent.status_changed_at).where(Agent.id.in_(agent_ids), Agent.status == "revoked")
        ended = {str(row[0]): int(row[1]) for row in s.execute(query).all()}
    return [
        Fact(
            seq=r.seq,
            kind=r.kind,
            value=r.value,
            created_at=r.created_at,
            ends_agent=r.kind == "agent" and ended.get(r.value) == r.created_at,
        )
        for r in live
    ]
