"""Human oversight (EU AI Act Art. 14): tools that need a person's approval, and the approvals.

Art. 14(4)(d): the people overseeing a high-risk system must be able "to decide, in any particular
situation, not to use the high-risk AI system or to otherwise disregard, override or reverse the
output"; 14(4)(e): "to intervene in the operation ... or interrupt the system through a 'stop'
button or a similar procedure" (for agents: suspension, which kills live tokens).

A **rule** marks ``tool`` at ``resource`` as needing approval, for every agent or (``min_risk``) only
for agents whose AI Act risk classification is at least that level. When such a call arrives, the
resource server asks :func:`check` (through ``POST /api/v1/oversight/check``): an unused approval
bound to exactly this agent + resource + tool + arguments digest is **consumed** (one call passes, a
single conditional UPDATE: never twice, even under concurrent retries); otherwise a pending request
is created (or the pending one reused) and its approval URL returned; a rejection is answered once
as ``rejected`` and then closed (the next call starts a new request).

Statuses: ``pending`` -> ``approved`` -> ``used``; ``pending`` -> ``rejected`` -> ``refused`` (the
agent was told); ``pending`` | ``approved`` -> ``expired`` (``ttl`` seconds after the request, then
after the approval). A decision on an already-decided request (approve after a rejection, reject an
unused approval) is an override. Audit records: ``approval.requested``, ``approval.approved``,
``approval.rejected``, ``approval.used``, ``approval.expired``, ``approval.overridden``; the
arguments themselves are never recorded (only their SHA-256).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from authz.compliance.ai_act import RISK_RANK, RISKS, risk_of
from authz.context import Context
from authz.identity.agents.errors import Conflict, Invalid, NotFound
from authz.storage.db import make_sessionmaker
from authz.storage.models.compliance_governance import Approval, ApprovalRule

DEFAULT_TTL = 600
MAX_ARGUMENTS_SHOWN = 4096
MAX_PENDING = 20  # per agent: more distinct gated calls waiting at once are refused (throttled)
APPROVAL_PATH = "/console/approvals/"


@dataclass(frozen=True)
class Decision:
    """What :func:`check` answers: ``allow`` (a consumed approval, or no rule applies), ``approval_required``
    (``approval`` is the pending request, ``url`` where a person decides), ``rejected``, or ``throttled``
    (the agent already has ``MAX_PENDING`` requests waiting: no new one is created)."""

    decision: str
    approval: dict[str, Any] | None = None
    url: str | None = None


def _sessions(ctx: Context) -> Any:
    return make_sessionmaker(ctx.store.engine)  # type: ignore[attr-defined]


def approval_url(ctx: Context, approval_id: str) -> str:
    return ctx.settings.issuer.rstrip("/") + APPROVAL_PATH + approval_id


def as_dict(row: Approval) -> dict[str, Any]:
    return {
        "id": row.id, "agent": row.agent, "resource": row.resource, "tool": row.tool,
        "arguments_sha256": row.args_sha256, "status": row.status, "requested_at": row.requested_at,
        "expires_at": row.expires_at, "decided_at": row.decided_at, "decided_by": row.decided_by,
        "reason": row.reason, "used_at": row.used_at,
    }  # fmt: skip


def rule_dict(row: ApprovalRule) -> dict[str, Any]:
    return {"id": row.id, "resource": row.resource, "tool": row.tool, "min_risk": row.min_risk, "ttl": row.ttl,
            "created_at": row.created_at, "created_by": row.created_by}  # fmt: skip


# -- rules ------------------------------------------------------------------------------------------


def list_rules(ctx: Context, resource: str | None = None) -> list[dict[str, Any]]:
    with _sessions(ctx)() as s:
        q = select(ApprovalRule).order_by(ApprovalRule.resource, ApprovalRule.tool)
        if resource is not None:
            q = q.where(ApprovalRule.resource == resource)
        return [rule_dict(r) for r in s.scalars(q)]


def put_rule(ctx: Context, resource: str, tool: str, *, min_risk: str | None = None, ttl: int = DEFAULT_TTL,
             actor: str) -> dict[str, Any]:  # fmt: skip
    """Create or replace the rule for ``tool`` at ``resource`` (a registered resource)."""
    errors: list[tuple[str, str]] = []
    if ctx.store.get_resource(resource) is None:
        errors.append(("resource", f"no registered resource {resource!r}"))
    if not tool or len(tool) > 255:
        errors.append(("tool", "must be a tool name of 1 to 255 characters"))
    if min_risk is not None and min_risk not in RISKS:
        errors.append(("min_risk", f"must be one of {', '.join(RISKS)} (or absent: every agent)"))
    if not 30 <= ttl <= 86_400:
        errors.append(("ttl", "must be between 30 and 86400 seconds"))
    if errors:
        raise Invalid(errors)
    now = int(time.time())
    with _sessions(ctx).begin() as s:
        row = s.scalars(_rule_query(resource, tool)).first()
        if row is None:
            row = ApprovalRule(id="rule_" + secrets.token_hex(8), resource=resource, tool=tool, min_risk=min_risk,
                               ttl=ttl, created_at=now, created_by=actor)  # fmt: skip
            s.add(row)
        else:
            row.min_risk, row.ttl, row.created_at, row.created_by = min_risk, ttl, now, actor
        out = rule_dict(row)
    ctx.audit.operator_change("approval_rule", "set", actor=actor, target=out["id"], resource_uri=resource,
                              tool=tool, min_risk=min_risk, ttl=ttl)  # fmt: skip
    return out


def delete_rule(ctx: Context, rule_id: str, *, actor: str) -> None:
    with _sessions(ctx).begin() as s:
        row = s.get(ApprovalRule, rule_id)
        if row is None:
            raise NotFound(f"no approval rule {rule_id!r}")
        resource, tool = row.resource, row.tool
        s.delete(row)
    ctx.audit.operator_change("approval_rule", "deleted", actor=actor, target=rule_id, resource_uri=resource,
                              tool=tool)  # fmt: skip


def _rule_query(resource: str, tool: str) -> Any:
    return select(ApprovalRule).where(ApprovalRule.resource == resource, ApprovalRule.tool == tool)


def gated_tools(ctx: Context, resource: str) -> list[str]:
    """Tools of ``resource`` some rule gates (for some agent): the resource server asks :func:`check` for these."""
    return sorted(r["tool"] for r in list_rules(ctx, resource))


def _applies(ctx: Context, rule: ApprovalRule, agent: str) -> bool:
    if rule.min_risk is None:
        return True
    risk = risk_of(ctx, agent)
    return risk is not None and RISK_RANK[risk] >= RISK_RANK[rule.min_risk]


# -- the check a resource server makes --------------------------------------------------------------


def expire_due(ctx: Context, now: int | None = None) -> int:
    """Mark pending and approved requests past their expiry as ``expired`` (an audit record each)."""
    now = int(time.time()) if now is None else now
    with _sessions(ctx).begin() as s:
        due = s.scalars(select(Approval).where(Approval.status.in_(("pending", "approved")),
                                               Approval.expires_at <= now).limit(500)).all()  # fmt: skip
        for row in due:
            previous, row.status = row.status, "expired"
            ctx.audit.record("approval.expired", client_id=row.agent, resource=row.resource, approval=row.id,
                             tool=row.tool, previous=previous)  # fmt: skip
        return len(due)


def check(ctx: Context, *, agent: str, resource: str, tool: str, args_sha256: str,
          arguments: str | None = None) -> Decision:  # fmt: skip
    """May ``agent`` call ``tool`` at ``resource`` with these arguments now? Consumes an approval if so."""
    now = int(time.time())
    expire_due(ctx, now)
    with _sessions(ctx)() as s:
        rule = s.scalars(_rule_query(resource, tool)).first()
        if rule is not None:
            s.expunge(rule)
    if rule is None or not _applies(ctx, rule, agent):
        return Decision("allow")
    bound = (Approval.agent == agent, Approval.resource == resource, Approval.tool == tool,
             Approval.args_sha256 == args_sha256)  # fmt: skip
    with _sessions(ctx).begin() as s:
        approved = s.scalars(select(Approval.id).where(*bound, Approval.status == "approved",
                                                       Approval.expires_at > now)).first()  # fmt: skip
        if approved is not None:
            used = s.execute(update(Approval).where(Approval.id == approved, Approval.status == "approved")
                             .values(status="used", used_at=now))  # fmt: skip
            if used.rowcount == 1:
                ctx.audit.record("approval.used", client_id=agent, resource=resource, approval=approved, tool=tool,
                                 arguments_sha256=args_sha256)  # fmt: skip
                return Decision("allow")
        rejected = s.scalars(select(Approval).where(*bound, Approval.status == "rejected")).first()
        if rejected is not None:
            rejected.status = "refused"
            return Decision("rejected", as_dict(rejected))
        pending = s.scalars(select(Approval).where(*bound, Approval.status == "pending",
                                                   Approval.expires_at > now)).first()  # fmt: skip
        if pending is None:
            waiting = s.scalar(select(func.count()).select_from(Approval).where(
                Approval.agent == agent, Approval.status == "pending", Approval.expires_at > now))  # fmt: skip
            if (waiting or 0) >= MAX_PENDING:  # a flood of distinct calls must not flood the approvers
                ctx.audit.refusal("approval.throttled", client_id=agent, resource=resource, reason="too_many_pending",
                                  tool=tool)  # fmt: skip
                return Decision("throttled")
            shown = arguments if arguments is not None and len(arguments) <= MAX_ARGUMENTS_SHOWN else None
            pending = Approval(id="apv_" + secrets.token_urlsafe(18), agent=agent, resource=resource, tool=tool,
                               args_sha256=args_sha256, arguments=shown, status="pending", requested_at=now,
                               expires_at=now + rule.ttl)  # fmt: skip
            s.add(pending)
            ctx.audit.record("approval.requested", client_id=agent, resource=resource, approval=pending.id, tool=tool,
                             arguments_sha256=args_sha256, rule=rule.id, expires_at=pending.expires_at)  # fmt: skip
        out = as_dict(pending)
    return Decision("approval_required", out, approval_url(ctx, out["id"]))


# -- people decide ----------------------------------------------------------------------------------


def get_approval(ctx: Context, approval_id: str) -> tuple[dict[str, Any], str | None]:
    """(the request, the arguments to show, if kept); expired ones are marked so first."""
    expire_due(ctx)
    with _sessions(ctx)() as s:
        row = s.get(Approval, approval_id)
        if row is None:
            raise NotFound(f"no approval request {approval_id!r}")
        return as_dict(row), row.arguments


def list_approvals(ctx: Context, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    expire_due(ctx)
    with _sessions(ctx)() as s:
        q = select(Approval).order_by(Approval.requested_at.desc(), Approval.id).limit(limit)
        if status is not None:
            q = q.where(Approval.status == status)
        return [as_dict(r) for r in s.scalars(q)]


def decide(ctx: Context, approval_id: str, approve: bool, *, actor: str, reason: str | None = None) -> dict[str, Any]:
    """A person approves or rejects. Deciding again on an undecided-by-use request is an override."""
    now = int(time.time())
    expire_due(ctx, now)
    with _sessions(ctx).begin() as s:
        row = s.get(Approval, approval_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no approval request {approval_id!r}")
        if row.status not in ("pending", "approved", "rejected"):
            raise Conflict(f"the request is {row.status}: it can no longer be decided")
        rule_ttl = s.scalars(select(ApprovalRule.ttl).where(ApprovalRule.resource == row.resource,
                                                            ApprovalRule.tool == row.tool)).first()  # fmt: skip
        previous = row.status
        row.status = "approved" if approve else "rejected"
        row.decided_at, row.decided_by, row.reason = now, actor, (reason or None)
        if approve:  # the approval is usable for one rule ttl from now
            row.expires_at = now + (rule_ttl or DEFAULT_TTL)
        out = as_dict(row)
    event = "approval.overridden" if previous != "pending" else f"approval.{row.status}"
    ctx.audit.record(event, client_id=out["agent"], resource=out["resource"], approval=approval_id, tool=out["tool"],
                     actor=actor, previous=previous, decision=out["status"], reason=reason,
                     basis="AI Act Art. 14(4)(d)")  # fmt: skip
    return out
