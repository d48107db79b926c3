"""Read models for the console pages: a fixed number of SQL statements per page, whatever the data size.

Counts and sums are computed in SQL (never by summing a page of rows); lists are bounded by a page
size. Writes never happen here: actions go through the domain services (:mod:`authz.console.actions`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from authz.audit.verify import first_broken
from authz.context import Context
from authz.storage.chain import GENESIS
from authz.storage.models import Agent, AuditEvent, Client, Grant, Resource, Revocation, Team
from authz.storage.models.audit import AuditCheckpoint
from authz.storage.models.metering import MeteringRollup

PAGE = 50
VERIFY_TAIL = 500  # the overview verifies the newest records' chain links; the audit page verifies all
AUDIT_FIELDS = (
    "seq", "at", "event", "outcome", "client_id", "subject", "resource", "reason", "detail", "prev_hash", "hash",
)  # fmt: skip


def engine_of(ctx: Context) -> Engine:
    engine: Engine = ctx.store.engine  # type: ignore[attr-defined]
    return engine


def day_start(now: float | None = None) -> int:
    t = datetime.fromtimestamp(now if now is not None else time.time(), tz=UTC)
    return int(datetime(t.year, t.month, t.day, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Overview:
    agents: dict[str, int]
    issued_today: int
    refused_today: int
    calls_today: int
    cost_today_pusd: int
    unpriced_today: int
    audit_events: int
    audit_tail_ok: bool


def overview(ctx: Context) -> Overview:
    engine, today = engine_of(ctx), day_start()
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(Agent.status, func.count()).group_by(Agent.status)).all())
        tokens = dict(
            conn.execute(
                select(AuditEvent.event, func.count())
                .where(AuditEvent.at >= today, AuditEvent.event.in_(("token.issued", "token.refused")))
                .group_by(AuditEvent.event)
            ).all()
        )
        r = MeteringRollup
        sums = conn.execute(
            select(func.coalesce(func.sum(r.count), 0), func.coalesce(func.sum(r.cost_pusd), 0),
                   func.coalesce(func.sum(r.unpriced), 0)).where(r.bucket >= today)
        ).one()  # fmt: skip
        total = int(conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
        tail = _audit_rows(conn, VERIFY_TAIL + 1)
    return Overview(
        agents={s: int(by_status.get(s, 0)) for s in ("active", "suspended", "revoked")},
        issued_today=int(tokens.get("token.issued", 0)),
        refused_today=int(tokens.get("token.refused", 0)),
        calls_today=int(sums[0]),
        cost_today_pusd=int(sums[1]),
        unpriced_today=int(sums[2]),
        audit_events=total,
        audit_tail_ok=_tail_verifies(tail),
    )


def _audit_rows(conn: Any, limit: int) -> list[dict[str, Any]]:
    cols = [getattr(AuditEvent, f) for f in AUDIT_FIELDS]
    rows = conn.execute(select(*cols).order_by(AuditEvent.seq.desc()).limit(limit)).all()
    return [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in reversed(rows)]


def _tail_verifies(rows: list[dict[str, Any]]) -> bool:
    """The newest records chain from their predecessor (the first row only provides the link)."""
    if len(rows) < 2:
        return first_broken(rows) is None if rows else True
    return first_broken(rows[1:], rows[0]["hash"]) is None


def verify_all(ctx: Context) -> tuple[int, int | None]:
    """(records, first broken seq or None): the whole chain, in batches."""
    count, after, prev = 0, 0, GENESIS
    cols = [getattr(AuditEvent, f) for f in AUDIT_FIELDS]
    with engine_of(ctx).connect() as conn:
        while True:
            batch = conn.execute(select(*cols).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(5000)).all()
            if not batch:
                return count, None
            rows = [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in batch]
            broken = first_broken(rows, prev)
            if broken is not None:
                return count, broken
            count += len(rows)
            after, prev = rows[-1]["seq"], rows[-1]["hash"]


@dataclass(frozen=True)
class AuditFilter:
    event: str = ""
    outcome: str = ""
    client_id: str = ""
    subject: str = ""
    before: int | None = None  # seq cursor (newest first)


def audit_page(ctx: Context, f: AuditFilter, limit: int = PAGE) -> list[dict[str, Any]]:
    cols = [getattr(AuditEvent, c) for c in AUDIT_FIELDS]
    q = select(*cols)
    if f.event:
        q = q.where(AuditEvent.event.startswith(f.event, autoescape=True))
    if f.outcome:
        q = q.where(AuditEvent.outcome == f.outcome)
    if f.client_id:
        q = q.where(AuditEvent.client_id == f.client_id)
    if f.subject:
        q = q.where(AuditEvent.subject == f.subject)
    if f.before is not None:
        q = q.where(AuditEvent.seq < f.before)
    with engine_of(ctx).connect() as conn:
        rows = conn.execute(q.order_by(AuditEvent.seq.desc()).limit(limit)).all()
    return [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]


def audit_for_client(ctx: Context, client_id: str, events: Sequence[str], limit: int = 20) -> list[dict[str, Any]]:
    cols = [getattr(AuditEvent, c) for c in AUDIT_FIELDS]
    q = select(*cols).where(AuditEvent.client_id == client_id, AuditEvent.event.in_(tuple(events)))
    with engine_of(ctx).connect() as conn:
        rows = conn.execute(q.order_by(AuditEvent.seq.desc()).limit(limit)).all()
    return [dict(zip(AUDIT_FIELDS, row, strict=True)) for row in rows]


def live_tokens(ctx: Context, agent: Agent) -> int:
    """Access tokens of this agent that are still alive: issued within the longest access-token lifetime,
    after the agent's latest revocation fact; none at all unless the agent is active (introspection
    refuses every token of a suspended or revoked agent)."""
    if agent.status != "active":
        return 0
    now = int(time.time())
    ttl = max(ctx.settings.access_token_ttl, ctx.settings.exchange_token_ttl)
    since = now - ttl
    with engine_of(ctx).connect() as conn:
        cutoff = conn.execute(
            select(func.max(Revocation.created_at)).where(
                Revocation.kind == "agent", Revocation.value == agent.id, Revocation.expires_at > now
            )
        ).scalar_one()
        since = max(since, int(cutoff or 0))  # a fact kills tokens issued at or before it
        q = (
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.event == "token.issued", AuditEvent.client_id == agent.id, AuditEvent.at > since)
        )
        return int(conn.execute(q).scalar_one())


def agents_page(
    ctx: Context, *, q: str = "", status: str = "", team_id: str | None = None, after: tuple[int, str] | None = None
) -> list[Agent]:
    return list(
        ctx.store.list_agents(
            team_id=team_id, status=status or None, name_contains=q or None, after=after, limit=PAGE + 1
        )
    )


def teams(ctx: Context) -> dict[str, str]:
    with engine_of(ctx).connect() as conn:
        return {str(i): str(n) for i, n in conn.execute(select(Team.id, Team.name).order_by(Team.name).limit(500))}


def servers_and_clients(ctx: Context) -> tuple[list[Resource], list[Client], dict[str, int]]:
    """Registered resources, clients (never their secret digests), and live grants per client."""
    now = int(time.time())
    with engine_of(ctx).connect() as conn:
        resources = list(ctx.store.list_resources())
        clients = [c for c in ctx.store.list_clients() if c.kind != "agent"][:200]
        grants = dict(
            conn.execute(
                select(Grant.client_id, func.count())
                .where(Grant.revoked_at.is_(None), Grant.expires_at > now)
                .group_by(Grant.client_id)
            ).all()
        )
    return resources, clients, {str(k): int(v) for k, v in grants.items()}


def latest_checkpoint(ctx: Context) -> dict[str, Any] | None:
    """The newest signed checkpoint of the audit log's Merkle tree (its C2SP signed note), or None."""
    c = AuditCheckpoint
    with engine_of(ctx).connect() as conn:
        row = conn.execute(select(c.size, c.root, c.note, c.at).order_by(c.size.desc()).limit(1)).first()
    if row is None:
        return None
    return {"size": int(row[0]), "root": bytes(row[1]).hex(), "note": str(row[2]), "at": int(row[3])}
