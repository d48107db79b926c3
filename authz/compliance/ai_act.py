"""Per-agent EU AI Act record: risk classification, intended purpose, provider, deployer.

What the record is for: a deployer or provider keeps, per AI system (here: per agent), the facts the
AI Act hangs its obligations on. Risk levels follow the Act's tiers (``minimal``, ``limited``, ``high``);
a ``high`` agent must name its Annex III area (Annex III points 1-8). Intended purpose (Art. 3(12)),
provider (Art. 3(3)) and deployer (Art. 3(4)) are free text. Every change is an audit record
(``ai_act.updated``, with the old and new values), so the log itself shows who classified what and when.

With the verifiable audit log, retention and the regulator export, this makes a deployment *ready
for* Articles 12, 19 and 26(6) (automatic logs, kept at least six months, handed over on request). It
is not a conformity assessment and claims no conformity.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from authz.context import Context
from authz.identity.agents.errors import Invalid, NotFound
from authz.storage.db import make_sessionmaker
from authz.storage.models.compliance_governance import AgentAiAct

RISKS = ("minimal", "limited", "high")
RISK_RANK = {r: i for i, r in enumerate(RISKS)}
ANNEX_III = {
    "biometrics": "1. Biometrics",
    "critical-infrastructure": "2. Critical infrastructure",
    "education": "3. Education and vocational training",
    "employment": "4. Employment, workers' management and access to self-employment",
    "essential-services": "5. Access to essential private and public services and benefits",
    "law-enforcement": "6. Law enforcement",
    "migration": "7. Migration, asylum and border control management",
    "justice-democracy": "8. Administration of justice and democratic processes",
}
FIELDS = ("risk", "annex_iii_area", "intended_purpose", "provider", "deployer")


@dataclass(frozen=True)
class AiActRecord:
    agent_id: str
    risk: str
    annex_iii_area: str | None
    intended_purpose: str
    provider: str
    deployer: str
    updated_at: int
    updated_by: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sessions(ctx: Context) -> Any:
    return make_sessionmaker(ctx.store.engine)  # type: ignore[attr-defined]


def _record(row: AgentAiAct) -> AiActRecord:
    return AiActRecord(row.agent_id, row.risk, row.annex_iii_area, row.intended_purpose, row.provider,
                       row.deployer, row.updated_at, row.updated_by)  # fmt: skip


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The record's fields, checked; :class:`Invalid` names every bad field (nothing is written)."""
    errors: list[tuple[str, str]] = []
    risk = data.get("risk")
    if risk not in RISKS:
        errors.append(("risk", f"must be one of {', '.join(RISKS)}"))
    area = data.get("annex_iii_area") or None
    if area is not None and area not in ANNEX_III:
        errors.append(("annex_iii_area", f"must be one of {', '.join(ANNEX_III)}"))
    elif risk == "high" and area is None:
        errors.append(("annex_iii_area", "is required when risk is high (the Annex III area)"))
    out: dict[str, Any] = {"risk": risk, "annex_iii_area": area}
    for name, limit in (("intended_purpose", 4000), ("provider", 255), ("deployer", 255)):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append((name, "is required"))
        elif len(value) > limit:
            errors.append((name, f"must be at most {limit} characters"))
        else:
            out[name] = value.strip()
    if errors:
        raise Invalid(errors)
    return out


def get_record(ctx: Context, agent_id: str) -> AiActRecord | None:
    with _sessions(ctx)() as s:
        row = s.get(AgentAiAct, agent_id)
        return _record(row) if row is not None else None


def risk_of(ctx: Context, agent_id: str) -> str | None:
    record = get_record(ctx, agent_id)
    return record.risk if record is not None else None


def put_record(ctx: Context, agent_id: str, data: dict[str, Any], *, actor: str) -> AiActRecord:
    """Create or replace the agent's record; audited as ``ai_act.updated`` with the changed fields."""
    if ctx.store.get_agent(agent_id) is None:
        raise NotFound(f"no agent {agent_id!r}")
    values = validate(data)
    now = int(time.time())
    with _sessions(ctx).begin() as s:
        row = s.get(AgentAiAct, agent_id)
        before = {f: getattr(row, f) for f in FIELDS} if row is not None else None
        if row is None:
            row = AgentAiAct(agent_id=agent_id, **values, updated_at=now, updated_by=actor)
            s.add(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at, row.updated_by = now, actor
        changed = sorted(f for f in FIELDS if before is None or before[f] != values[f])
        record = _record(row)
    ctx.audit.operator_change("ai_act", "updated", actor=actor, target=agent_id, changed=changed,
                              previous=before, current=values)  # fmt: skip
    return record
