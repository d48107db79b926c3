"""Retention: purge the oldest audit records, keep their Merkle leaves, so every proof still verifies.

AI Act Art. 19(1) and 26(6): logs are kept "for a period appropriate to the intended purpose of the
high-risk AI system, of at least six months". ``AUTHZ_AUDIT_RETENTION_DAYS`` (default 183) is the
minimum: a purge of anything younger is refused. A purge deletes a prefix of the log (``seq`` 1..S):
the tree nodes stay (leaf hashes included), and the purge is itself a record carrying the last
purged chain hash and leaf index, so ``authz audit verify`` accepts the missing records and
re-anchors the chain at the first one kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from authz.audit.store import AuditTreeStore
from authz.storage.models import AuditEvent

DAY = 86400


class PurgeError(ValueError):
    pass


@dataclass(frozen=True)
class Purge:
    count: int
    through_seq: int


def purge_before(store: AuditTreeStore, before: int, retention_days: int, dry_run: bool = False) -> Purge:
    oldest_allowed = int(time.time()) - retention_days * DAY
    if before > oldest_allowed:
        raise PurgeError(
            f"refusing to purge records younger than the retention minimum of {retention_days} days "
            f"(AUTHZ_AUDIT_RETENTION_DAYS): pick a date before {time.strftime('%Y-%m-%d', time.gmtime(oldest_allowed))}"
        )
    with store.sessions() as s:
        first_kept = s.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.at >= before))
        top = s.scalar(select(func.max(AuditEvent.seq)))
        through = (first_kept - 1) if first_kept is not None else top
        if not through:
            return Purge(0, 0)
        last = s.execute(
            select(AuditEvent.hash, AuditEvent.leaf_index).where(AuditEvent.seq <= through).order_by(
                AuditEvent.seq.desc()).limit(1)).first()  # fmt: skip
        count = int(s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.seq <= through)) or 0)
        through_index = s.scalar(select(func.max(AuditEvent.leaf_index)).where(AuditEvent.seq <= through))
    if last is None or count == 0:
        return Purge(0, 0)
    if dry_run:
        return Purge(count, through)
    store.append_audit([{
        "at": int(time.time()), "event": "audit.purged", "outcome": "success", "client_id": None, "subject": None,
        "resource": None, "reason": f"retention: records before {time.strftime('%Y-%m-%d', time.gmtime(before))}",
        "detail": {"through_seq": through, "through_index": -1 if through_index is None else int(through_index),
                   "last_hash": last[0], "count": count, "actor": "cli", "operator_change": True},
    }])  # fmt: skip
    with store.sessions.begin() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq <= through))
    return Purge(count, through)
