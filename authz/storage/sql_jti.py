"""Many single-use ``jti`` values remembered in one statement and one commit (group commit).

The ``used_jtis`` table every replica shares (RFC 9449 §11.1 for DPoP proofs: "the server MUST
only accept the proof once within the window"). :class:`JtiWriter` inserts a batch of keys with
one multi-row conditional upsert on a connection of its own, and answers which keys it inserted:
a key that already has a live row (another request, another replica) is not returned, so the
database's unique key still decides who won, exactly as the one-row
:meth:`~authz.storage.sql.SqlStore.remember_jti`. Nothing is reported before the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from authz.storage.db import is_postgres
from authz.storage.models import UsedJti

__all__ = ["MAX_BATCH", "JtiWriter"]

MAX_BATCH = 256  # rows per statement: 513 parameters, far below SQLite's and PostgreSQL's limits


class JtiWriter:
    """One dedicated DBAPI connection; :meth:`remember` runs one transaction per batch. Not thread-safe:
    one thread (the replay cache's writer) uses it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = pg_insert if is_postgres(engine) else sqlite_insert
        self._statements: dict[int, tuple[str, tuple[str, ...] | None]] = {}
        self._conn: Any = None
        self.local = not is_postgres(engine)  # SQLite: a file on this machine, no round trip to wait for

    def _statement(self, n: int) -> tuple[str, tuple[str, ...] | None]:
        cached = self._statements.get(n)
        if cached is None:
            rows: list[dict[str, Any]] = [
                {"key": bindparam(f"k{i}"), "expires_at": bindparam(f"e{i}")} for i in range(n)
            ]
            insert = self._insert(UsedJti).values(rows)
            stmt = insert.on_conflict_do_update(
                index_elements=[UsedJti.key],
                set_={"expires_at": insert.excluded.expires_at},
                where=UsedJti.expires_at <= bindparam("n"),
            ).returning(UsedJti.key)
            compiled = stmt.compile(dialect=self._engine.dialect)
            cached = (compiled.string, tuple(compiled.positiontup or ()) if compiled.positional else None)
            self._statements[n] = cached
        return cached

    def remember(self, rows: Sequence[tuple[str, int]], now: int) -> set[str]:
        """Insert ``(key, expires_at)`` rows (distinct keys, at most :data:`MAX_BATCH`), or take over
        expired ones; the keys inserted. A key with a live row is a replay (not in the answer)."""
        if not rows:
            return set()
        sql, order = self._statement(len(rows))
        params: dict[str, Any] = {"n": now}
        for i, (key, expires_at) in enumerate(rows):
            params[f"k{i}"] = key
            params[f"e{i}"] = expires_at
        args = params if order is None else tuple(params[name] for name in order)
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        conn = self._conn
        try:
            cur = conn.cursor()
            try:
                cur.execute(sql, args)
                won = {row[0] for row in cur.fetchall()}
            finally:
                cur.close()
            conn.commit()
        except BaseException:
            self.close(invalidate=True)  # a broken connection is replaced on the next batch
            raise
        return won

    def close(self, invalidate: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # closing a broken connection must not hide the first error
            if invalidate:
                conn.invalidate()
            else:
                conn.rollback()
                conn.close()  # back to the engine's pool
