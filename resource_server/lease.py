"""The bookkeeping of :class:`~resource_server.budget.BudgetHook`'s leases: one lease (units of one
reservation at the AS) and one subject's slot (its current lease, the one leased ahead, the uses waiting)."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

from resource_server.hooks import Refusal

__all__ = ["Lease", "Slot", "Subject"]

Subject = tuple[str | None, str | None, str | None]  # (agent, team, workflow)


@dataclass(eq=False, slots=True)
class Lease:
    """Units of one reservation at the AS, handed out to uses of one subject."""

    handle: str | None  # None: no budget applies to the subject (nothing to settle)
    units: int
    granted: float  # monotonic
    taken: int = 0
    inflight: int = 0
    calls: int = 0  # uses that happened (charged)
    tokens: int = 0
    last_used: float = 0.0
    retired: bool = False
    settled: bool = False


@dataclass(eq=False, slots=True)
class Slot:
    """One subject's current lease and the uses waiting for the next one."""

    lease: Lease | None = None
    ahead: Lease | None = None  # leased before ``lease`` ran out; takes over when it does
    size: int = 1  # the next lease's size
    waiters: collections.deque[asyncio.Future[Lease | Refusal | None]] = field(default_factory=collections.deque)
    acquiring: bool = False
    returned: float = 0.0  # when the last lease was retired (monotonic)
