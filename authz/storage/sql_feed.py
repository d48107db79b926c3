"""The change feed every SQL repository writes to: one ``ChangeLog`` row per change, in commit order."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import CursorResult, Result, text
from sqlalchemy.orm import Session

from authz.storage.models import ChangeLog

FEED_LOCK_ID = 0x46_45_45_44  # "FEED": change_log/revocations seq order = commit order on PostgreSQL


def _now() -> int:
    return int(time.time())


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _serialise_feed(s: Session) -> None:
    """On PostgreSQL a seq is taken at INSERT but becomes visible at COMMIT, so two writers can commit
    out of order and a poller that already passed the later seq never sees the earlier one. One feed
    writer at a time (until its commit) keeps seq order equal to commit order. SQLite writers are serial."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": FEED_LOCK_ID})


def _change(s: Session, topic: str, key: str) -> None:
    _serialise_feed(s)
    s.add(ChangeLog(topic=topic, key=key, at=_now()))
