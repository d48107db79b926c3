"""Admin API of human oversight and the AI Act record (mounted under ``/api/v1``).

Rules and decisions (``admin:read`` / ``admin:write``):
``GET|POST /oversight/rules``, ``DELETE /oversight/rules/{rule_id}``, ``GET /oversight/approvals``,
``POST /oversight/approvals/{approval_id}/decision`` (an operator's decision, or an override).

The resource server's side (scope ``approvals:check``, an admin client of the MCP server's own:
``authz admin-client create --name my-mcp --scopes approvals:check``): ``GET /oversight/gated?resource=``
lists the tools some rule gates at that resource (the server caches it for ``ttl`` seconds and asks
nothing for other tools); ``POST /oversight/check`` answers ``allow`` (an approval was consumed, or
no rule applies to this agent), ``approval_required`` (with the approval URL) or ``rejected``.

AI Act record: ``GET|PUT /agents/{agent_id}/ai-act``; a bad field is a 422 problem naming it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authz.admin.api import Call, Operation, QueryParam
from authz.admin.problems import ApiProblem
from authz.compliance import ai_act, approvals

READ, WRITE, CHECK = "admin:read", "admin:write", "approvals:check"
GATED_TTL = 30


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleIn(_In):
    resource: str = Field(max_length=512, description="A registered resource (its URI).")
    tool: str = Field(max_length=255, description="The tool name (tools/call params.name).")
    min_risk: Literal["minimal", "limited", "high"] | None = Field(
        None, description="Only agents at or above this AI Act risk level need approval; absent: every agent."
    )
    ttl: int = Field(approvals.DEFAULT_TTL, description="Seconds a request, then an approval, stays valid.")


class Rule(BaseModel):
    id: str
    resource: str
    tool: str
    min_risk: str | None
    ttl: int
    created_at: int
    created_by: str


class Rules(BaseModel):
    rules: list[Rule]


class Deleted(BaseModel):
    deleted: str


class ApprovalOut(BaseModel):
    id: str
    agent: str
    resource: str
    tool: str
    arguments_sha256: str
    status: str
    requested_at: int
    expires_at: int
    decided_at: int | None
    decided_by: str | None
    reason: str | None
    used_at: int | None


class Approvals(BaseModel):
    approvals: list[ApprovalOut]


class DecisionIn(_In):
    decision: Literal["approve", "reject"]
    reason: str | None = Field(None, max_length=255)


class Gated(BaseModel):
    resource: str
    tools: list[str]
    ttl: int = Field(description="Seconds the list may be cached.")


class CheckIn(_In):
    agent: str = Field(max_length=64, description="The calling agent (the token's agent or client_id).")
    resource: str = Field(max_length=512)
    tool: str = Field(max_length=255)
    arguments_sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the arguments (sorted-key JSON).")
    arguments: str | None = Field(
        None,
        max_length=approvals.MAX_ARGUMENTS_SHOWN,
        description="The arguments as JSON, shown to the approver (never audited).",
    )


class CheckOut(BaseModel):
    decision: Literal["allow", "approval_required", "rejected", "throttled"]
    approval_id: str | None = None
    url: str | None = None
    expires_at: int | None = None
    decided_by: str | None = None
    reason: str | None = None


class AiActIn(_In):
    risk: str = Field(description="minimal | limited | high")
    annex_iii_area: str | None = Field(None, description="Required when risk is high: " + ", ".join(ai_act.ANNEX_III))
    intended_purpose: str = Field(max_length=4000)
    provider: str = Field(max_length=255)
    deployer: str = Field(max_length=255)


class AiActOut(BaseModel):
    agent_id: str
    risk: str
    annex_iii_area: str | None
    intended_purpose: str
    provider: str
    deployer: str
    updated_at: int
    updated_by: str
    note: str = "Ready for AI Act Articles 12/19/26(6) record-keeping; this record is not a conformity assessment."


def list_rules_op(call: Call) -> tuple[int, Rules]:
    return 200, Rules(rules=[Rule(**r) for r in approvals.list_rules(call.ctx, call.query.get("resource"))])


def put_rule_op(call: Call) -> tuple[int, Rule]:
    b: RuleIn = call.body
    rule = approvals.put_rule(call.ctx, b.resource, b.tool, min_risk=b.min_risk, ttl=b.ttl, actor=call.actor)
    return 200, Rule(**rule)


def delete_rule_op(call: Call) -> tuple[int, Deleted]:
    approvals.delete_rule(call.ctx, call.path["rule_id"], actor=call.actor)
    return 200, Deleted(deleted=call.path["rule_id"])


def list_approvals_op(call: Call) -> tuple[int, Approvals]:
    rows = approvals.list_approvals(call.ctx, call.query.get("status"))
    return 200, Approvals(approvals=[ApprovalOut(**r) for r in rows])


def decide_op(call: Call) -> tuple[int, ApprovalOut]:
    b: DecisionIn = call.body
    row = approvals.decide(call.ctx, call.path["approval_id"], b.decision == "approve", actor=call.actor,
                           reason=b.reason)  # fmt: skip
    return 200, ApprovalOut(**row)


def gated_op(call: Call) -> tuple[int, Gated]:
    resource = call.query.get("resource")
    if not resource:
        raise ApiProblem(422, "The request has invalid fields.", errors=[("resource", "is required")])
    return 200, Gated(resource=resource, tools=approvals.gated_tools(call.ctx, resource), ttl=GATED_TTL)


def check_op(call: Call) -> tuple[int, CheckOut]:
    b: CheckIn = call.body
    d = approvals.check(call.ctx, agent=b.agent, resource=b.resource, tool=b.tool, args_sha256=b.arguments_sha256,
                        arguments=b.arguments)  # fmt: skip
    a: dict[str, Any] = d.approval or {}
    return 200, CheckOut(
        decision=d.decision,
        approval_id=a.get("id"),
        url=d.url,
        expires_at=a.get("expires_at"),
        decided_by=a.get("decided_by"),
        reason=a.get("reason"),
    )


def get_ai_act_op(call: Call) -> tuple[int, AiActOut]:
    record = ai_act.get_record(call.ctx, call.path["agent_id"])
    if record is None:
        raise ApiProblem(404, f"agent {call.path['agent_id']!r} has no AI Act record")
    return 200, AiActOut(**record.as_dict())


def put_ai_act_op(call: Call) -> tuple[int, AiActOut]:
    record = ai_act.put_record(call.ctx, call.path["agent_id"], call.body.model_dump(), actor=call.actor)
    return 200, AiActOut(**record.as_dict())


_RESOURCE = QueryParam("resource", {"type": "string"}, "A registered resource URI.")
_STATUS = QueryParam("status", {"type": "string"}, "pending | approved | rejected | used | refused | expired")
OPERATIONS = [
    Operation("GET", "/oversight/rules", list_rules_op, READ, "Tools that need human approval", Rules,
              query=(_RESOURCE,)),
    Operation("POST", "/oversight/rules", put_rule_op, WRITE, "Mark a tool as needing human approval", Rule,
              body=RuleIn, errors=(422,)),
    Operation("DELETE", "/oversight/rules/{rule_id}", delete_rule_op, WRITE, "Stop requiring approval", Deleted),
    Operation("GET", "/oversight/approvals", list_approvals_op, READ, "Approval requests, newest first", Approvals,
              query=(_STATUS,)),
    Operation("POST", "/oversight/approvals/{approval_id}/decision", decide_op, WRITE,
              "Approve or reject (again: an override)", ApprovalOut, body=DecisionIn, errors=(404, 409, 422)),
    Operation("GET", "/oversight/gated", gated_op, CHECK, "Tools of a resource some rule gates (resource servers)",
              Gated, query=(_RESOURCE,), errors=(422,)),
    Operation("POST", "/oversight/check", check_op, CHECK, "May this call go ahead? Consumes an approval",
              CheckOut, body=CheckIn, errors=(422,)),
    Operation("GET", "/agents/{agent_id}/ai-act", get_ai_act_op, READ, "An agent's AI Act record", AiActOut),
    Operation("PUT", "/agents/{agent_id}/ai-act", put_ai_act_op, WRITE, "Set an agent's AI Act record", AiActOut,
              body=AiActIn, errors=(404, 422)),
]  # fmt: skip
