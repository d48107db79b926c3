"""Serious incidents (EU AI Act Art. 73): a record linked to agents and an audit range, with its clock.

Art. 73(2): the report is due "not later than 15 days after the provider or, where applicable, the
deployer, becomes aware of the serious incident"; 73(3): "not later than two days" for a widespread
infringement or a serious incident under Art. 3(49)(b) (serious and irreversible disruption of the
management or operation of critical infrastructure); 73(4): "not later than 10 days" in the event of
the death of a person. 73(5) allows an incomplete initial report. The clock starts at ``aware_at``
(default: when the incident is opened) and the deadline follows from the ``kind``:

=========================  ====  ============================================
kind                       days  Art. 73
=========================  ====  ============================================
``serious``                15    (2)
``death``                  10    (4)
``widespread``             2     (3), widespread infringement
``critical-infrastructure`` 2    (3), Art. 3(49)(b)
=========================  ====  ============================================

Opening, every update (fields changed, ``reported_at`` once the authority has the report) and closing
are audit records (``incident.opened|updated|closed``). The audit range ``seq_from``..``seq_to`` names the
records the incident concerns; ``authz audit export`` of that range is what goes to the authority.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import select

from authz.context import Context
from authz.identity.agents.errors import Conflict, Invalid, NotFound
from authz.storage.db import make_sessionmaker
from authz.storage.models.compliance_governance import Incident

CLOCK_DAYS = {"serious": 15, "death": 10, "widespread": 2, "critical-infrastructure": 2}
DAY = 86_400
EDITABLE = ("title", "kind", "agents", "seq_from", "seq_to", "description", "aware_at", "reported_at")


def _sessions(ctx: Context) -> Any:
    return make_sessionmaker(ctx.store.engine)  # type: ignore[attr-defined]


def as_dict(row: Incident, now: int | None = None) -> dict[str, Any]:
    now = int(time.time()) if now is None else now
    left = row.deadline - now
    return {
        "id": row.id, "title": row.title, "kind": row.kind, "status": row.status, "agents": list(row.agents),
        "seq_from": row.seq_from, "seq_to": row.seq_to, "description": row.description, "aware_at": row.aware_at,
        "deadline": row.deadline, "reporting_days": CLOCK_DAYS[row.kind], "reported_at": row.reported_at,
        "seconds_left": None if row.reported_at is not None else left,
        "overdue": row.reported_at is None and left < 0,
        "opened_at": row.opened_at, "opened_by": row.opened_by, "updated_at": row.updated_at,
        "closed_at": row.closed_at,
    }  # fmt: skip


def _check(ctx: Context, values: dict[str, Any]) -> None:
    errors: list[tuple[str, str]] = []
    if "title" in values and (not isinstance(values["title"], str) or not 1 <= len(values["title"].strip()) <= 255):
        errors.append(("title", "must be 1 to 255 characters"))
    if "kind" in values and values["kind"] not in CLOCK_DAYS:
        errors.append(("kind", f"must be one of {', '.join(CLOCK_DAYS)}"))
    for i, agent in enumerate(values.get("agents") or ()):
        if not isinstance(agent, str) or ctx.store.get_agent(agent) is None:
            errors.append((f"agents.{i}", f"no agent {agent!r}"))
    lo, hi = values.get("seq_from"), values.get("seq_to")
    for name, seq in (("seq_from", lo), ("seq_to", hi)):
        if seq is not None and (not isinstance(seq, int) or seq < 1):
            errors.append((name, "must be an audit sequence number (>= 1)"))
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        errors.append(("seq_to", "must not be before seq_from"))
    errors.extend(
        (name, "must be a Unix time, not in the future")
        for name in ("aware_at", "reported_at")
        if values.get(name) is not None and (not isinstance(values[name], int) or values[name] > time.time() + 60)
    )
    if errors:
        raise Invalid(errors)


def open_incident(ctx: Context, *, title: str, kind: str = "serious", agents: list[str] | None = None,
                  seq_from: int | None = None, seq_to: int | None = None, description: str = "",
                  aware_at: int | None = None, actor: str) -> dict[str, Any]:  # fmt: skip
    now = int(time.time())
    aware = now if aware_at is None else aware_at
    values = {"title": title, "kind": kind, "agents": list(agents or []), "seq_from": seq_from, "seq_to": seq_to,
              "aware_at": aware}  # fmt: skip
    _check(ctx, values)
    row = Incident(id="inc_" + secrets.token_hex(8), title=title.strip(), kind=kind, status="open",
                   agents=values["agents"], seq_from=seq_from, seq_to=seq_to, description=description, aware_at=aware,
                   deadline=aware + CLOCK_DAYS[kind] * DAY, opened_at=now, opened_by=actor, updated_at=now)  # fmt: skip
    with _sessions(ctx).begin() as s:
        s.add(row)
        out = as_dict(row, now)
    ctx.audit.operator_change("incident", "opened", actor=actor, target=out["id"], clock=kind, agents=out["agents"],
                              seq_from=seq_from, seq_to=seq_to, deadline=out["deadline"])  # fmt: skip
    return out


def get_incident(ctx: Context, incident_id: str) -> dict[str, Any]:
    with _sessions(ctx)() as s:
        row = s.get(Incident, incident_id)
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        return as_dict(row)


def list_incidents(ctx: Context, status: str | None = None) -> list[dict[str, Any]]:
    with _sessions(ctx)() as s:
        q = select(Incident).order_by(Incident.deadline, Incident.id)
        if status is not None:
            q = q.where(Incident.status == status)
        return [as_dict(r) for r in s.scalars(q)]


def update_incident(ctx: Context, incident_id: str, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Change some fields (a new ``kind`` or ``aware_at`` moves the deadline); a closed incident is read-only."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise Invalid([(name, "cannot be changed") for name in unknown])
    _check(ctx, changes)
    now = int(time.time())
    with _sessions(ctx).begin() as s:
        row = s.get(Incident, incident_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        if row.status == "closed":
            raise Conflict("the incident is closed")
        merged = {"seq_from": row.seq_from, "seq_to": row.seq_to, **changes}
        _check(ctx, {"seq_from": merged["seq_from"], "seq_to": merged["seq_to"]})
        changed = {k: v for k, v in changes.items() if getattr(row, k) != v}
        for name, value in changed.items():
            setattr(row, name, list(value) if name == "agents" else value)
        row.deadline = row.aware_at + CLOCK_DAYS[row.kind] * DAY
        row.updated_at = now
        out = as_dict(row, now)
    detail = {("clock" if k == "kind" else k): v for k, v in changed.items() if k != "description"}
    ctx.audit.operator_change("incident", "updated", actor=actor, target=incident_id, changed=sorted(changed),
                              deadline=out["deadline"], **detail)  # fmt: skip
    return out


def close_incident(ctx: Context, incident_id: str, *, actor: str, resolution: str | None = None) -> dict[str, Any]:
    now = int(time.time())
    with _sessions(ctx).begin() as s:
        row = s.get(Incident, incident_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        if row.status == "closed":
            raise Conflict("the incident is already closed")
        row.status, row.closed_at, row.updated_at = "closed", now, now
        out = as_dict(row, now)
    ctx.audit.operator_change("incident", "closed", actor=actor, target=incident_id, resolution=resolution,
                              reported=out["reported_at"] is not None)  # fmt: skip
    return out
