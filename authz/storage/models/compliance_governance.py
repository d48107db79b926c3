"""EU AI Act records: human-oversight rules and approvals (Art. 14), per-agent AI Act facts, incidents (Art. 73).

``approval_rules`` marks a tool of a registered resource as needing a person's approval (optionally only
for agents at or above a risk level); ``approvals`` holds each request for approval, single-use and bound
to agent + resource + tool + an arguments digest; ``agent_ai_act`` the risk classification, intended
purpose, provider and deployer of an agent; ``incidents`` serious-incident records with their reporting
deadline. Every change to them is also an audit record.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class ApprovalRule(Base):
    __tablename__ = "approval_rules"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # rule_...
    resource: Mapped[str] = mapped_column(String(512))
    tool: Mapped[str] = mapped_column(String(255))
    min_risk: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: every agent
    ttl: Mapped[int] = mapped_column(Integer)  # seconds a request, then an approval, stays valid
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(255))
    __table_args__ = (UniqueConstraint("resource", "tool"),)


class Approval(Base):
    __tablename__ = "approvals"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # apv_...
    agent: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(512))
    tool: Mapped[str] = mapped_column(String(255))
    args_sha256: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[str | None] = mapped_column(Text, nullable=True)  # shown to the approver, never audited
    # pending -> approved -> used | pending -> rejected -> refused | pending/approved -> expired
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        Index("ix_approvals_agent", "agent", "resource", "tool", "args_sha256"),
        Index("ix_approvals_status", "status", "expires_at"),
    )


class AgentAiAct(Base):
    __tablename__ = "agent_ai_act"
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    risk: Mapped[str] = mapped_column(String(16))  # minimal | limited | high
    annex_iii_area: Mapped[str | None] = mapped_column(String(64), nullable=True)  # required when high
    intended_purpose: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(255))
    deployer: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(255))


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # inc_...
    title: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))  # serious | death | widespread (the reporting clock)
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    agents: Mapped[list[str]] = mapped_column(default=list)
    seq_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seq_to: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    aware_at: Mapped[int] = mapped_column(BigInteger)  # when the organisation became aware: the clock starts
    deadline: Mapped[int] = mapped_column(BigInteger)
    reported_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    opened_at: Mapped[int] = mapped_column(BigInteger)
    opened_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[int] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
