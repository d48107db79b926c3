"""The usage a preview prices: summed rollup rows of one period as plain tuples, indexed once.

:class:`Usage` holds the period's summed rollups as a :class:`Table`: one tuple
``(agent, event type, *dims, *sums)`` per (agent, event type, dimension values), exactly as the
rollup query returns them, with no object per row. Tests and callers that hold
:class:`UsageRow` objects pass ``rows`` instead; they are turned into a table once.

:class:`Index` reads a table once per preview: its rows by event type (so each invoice line visits
only the rows of its own meter), the active agents (for seats and pooled allowances), and the
model cost by agent and by workflow, summed as pico-USD integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authz.billing.components import Component
from authz.billing.outcomes import OutcomeRow

Values = tuple[str, ...]

SUMS = (
    "count",
    "quantity",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_pusd",
    "priced",
    "unpriced",
)
NEEDED = ("count", "cost_pusd", "unpriced")  # every preview reads these sums; a meter adds its field


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Summed rollups of one (agent, event type, dimensions) in the period."""

    agent: str
    type: str
    dims: Mapping[str, str]  # FILTER_DIMS values
    sums: Mapping[str, int]  # SUMS


@dataclass(frozen=True, slots=True)
class Table:
    """Rows ``(agent, type, *dims, *sums)``, the dimension and sum names in ``dims`` / ``sums`` order.
    Rows need not be unique per key: the preview only adds them up."""

    dims: tuple[str, ...]
    sums: tuple[str, ...]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Usage:
    rows: tuple[UsageRow, ...] = ()  # the usage as objects (tests); ignored when ``table`` is given
    agent_days: Mapping[str, int] = field(default_factory=dict)  # days each agent was active (prorated seats)
    as_of_ms: int | None = None  # the newest flushed event
    outcomes: tuple[OutcomeRow, ...] = ()  # outcome counts by attribute set (plans with triggers)
    table: Table | None = None  # the usage as tuples (what :mod:`authz.billing.usage` reads)


def sum_name(field_name: str) -> str:
    """The sum a meter's ``field`` reads (``tokens``: input + output, which is the ``quantity``)."""
    return "quantity" if field_name == "tokens" else field_name


def sums_read(components: Iterable[Component]) -> tuple[str, ...]:
    """The sums a preview of these components reads: :data:`NEEDED` and each rollup meter's field."""
    fields = {sum_name(c.quantity.field) for c in components if c.quantity.source == "meter" and not c.quantity.when}
    return tuple(s for s in SUMS if s in NEEDED or s in fields)


def table_of(usage: Usage) -> Table:
    """``usage.table``, or its :class:`UsageRow` objects as a table (dimensions absent from a row: "")."""
    if usage.table is not None:
        return usage.table
    dims = tuple(sorted({d for r in usage.rows for d in r.dims}))
    rows = [
        (r.agent, r.type, *(r.dims.get(d, "") for d in dims), *(r.sums.get(s, 0) for s in SUMS)) for r in usage.rows
    ]
    return Table(dims, SUMS, rows)


class Index:
    """One pass over a usage table: rows by event type, active agents, model cost by agent and workflow."""

    __slots__ = ("active", "by_type", "dim_at", "pusd_by_agent", "pusd_by_workflow", "sum_at")

    def __init__(self, usage: Usage) -> None:
        table = table_of(usage)
        self.dim_at = {d: 2 + i for i, d in enumerate(table.dims)}
        self.sum_at = {s: 2 + len(table.dims) + i for i, s in enumerate(table.sums)}
        count, cost = self.sum_at["count"], self.sum_at["cost_pusd"]
        workflow = self.dim_at.get("workflow")
        by_type: dict[str, list[Sequence[Any]]] = {}
        active: set[str] = set()
        by_agent: dict[str, int] = {}
        by_workflow: dict[str, int] = {}
        for row in table.rows:
            rows = by_type.get(row[1])
            if rows is None:
                rows = by_type[row[1]] = []
            rows.append(row)
            agent = row[0]
            if row[count] > 0 and agent:
                active.add(agent)
            pusd = row[cost]
            if pusd:
                by_agent[agent] = by_agent.get(agent, 0) + pusd
                wf = "" if workflow is None else row[workflow]
                by_workflow[wf] = by_workflow.get(wf, 0) + pusd
        self.by_type = by_type
        self.active = active
        self.pusd_by_agent = by_agent
        self.pusd_by_workflow = by_workflow

    def filter_positions(self, wanted: Sequence[tuple[str, Values]]) -> list[tuple[int, Values]] | None:
        """A meter filter as (position, allowed values) checks; None when no row can pass it (a
        dimension the table lacks is "" in every row)."""
        checks = []
        for dim, values in wanted:
            at = self.dim_at.get(dim)
            if at is not None:
                checks.append((at, values))
            elif "" not in values:
                return None
        return checks


__all__ = ["NEEDED", "SUMS", "Index", "Table", "Usage", "UsageRow", "sum_name", "sums_read", "table_of"]
