"""The values that cross the `policies` API: requests in, decisions and problems out.

Plain frozen dataclasses, stdlib only, so the authorization server can build them without
knowing anything about Cedar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

__all__ = ["Context", "Decision", "PolicyError", "Principal", "Problem", "Request", "ScopeDecision"]

PrincipalKind = Literal["agent", "user", "client"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks for the token: an agent, a human user, or a client acting for itself."""

    kind: PrincipalKind
    id: str
    team: str | None = None
    owner: str | None = None
    tags: Sequence[str] = ()
    groups: Sequence[str] = ()

    def key(self) -> tuple[object, ...]:
        """A hashable value that identifies everything Cedar sees of this principal."""
        return (self.kind, self.id, self.team, self.owner, tuple(sorted(self.tags)), tuple(sorted(self.groups)))


@dataclass(frozen=True, slots=True)
class Context:
    """The parts of a token request that are not entities (see `schema.cedarschema`)."""

    grant_type: str
    delegated: bool = False
    user: str | None = None
    user_groups: Sequence[str] = ()
    act_depth: int = 0
    workflow: str | None = None
    time: datetime | None = None  # None: now. Naive datetimes are taken as UTC.

    def minute(self) -> datetime:
        """Request time in UTC, truncated to the minute (what Cedar sees as `context.time`)."""
        t = self.time or datetime.now(UTC)
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        return t.replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Request:
    """One token issuance to decide: may `principal` obtain `scopes` on the MCP server `resource`?"""

    principal: Principal
    client_id: str
    resource: str
    scopes: Sequence[str]
    context: Context


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    """The answer for one scope and the policy ids that decided it.

    Allowed: the permit policies that matched. Denied: the forbid policies that matched, or
    none at all when nothing permitted the scope (default deny).
    """

    allowed: bool
    policies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for a whole request. Grant exactly `permitted` (a subset of the requested scopes)."""

    permitted: frozenset[str]
    by_scope: Mapping[str, ScopeDecision]
    reasons: tuple[str, ...] = ()  # every deciding policy id, for the audit trail
    errors: tuple[str, ...] = ()  # evaluation errors (a policy that errors does not apply)

    @property
    def denied(self) -> frozenset[str]:
        return frozenset(s for s, d in self.by_scope.items() if not d.allowed)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a policy directory, located as `file:line:col`."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@dataclass(eq=False)
class PolicyError(Exception):
    """A policy set that cannot be loaded. `problems` lists every problem found, each with its location."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems) or "invalid policy set"
