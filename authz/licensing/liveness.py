"""Machine liveness, computed at read time (never stored): no per-machine jobs to go missing.

A machine of a policy with a ``heartbeat_interval`` is ``NOT_STARTED`` until its first heartbeat,
``ALIVE`` while its last heartbeat (or, before the first, its activation) is younger than the
interval plus :data:`DRIFT`, then ``DEAD``. A dead machine can be revived by a heartbeat within the
policy's ``resurrection_window`` after it died; after that window a ``deactivate_dead`` policy culls it
(it no longer counts against the machine limit, even before the sweeper deletes the row).
Without an interval, heartbeats are not required: ``NOT_REQUIRED``.
"""

from __future__ import annotations

from dataclasses import dataclass

DRIFT = 30  # seconds of grace for network delay, as Keygen's HEARTBEAT_DRIFT
NOT_REQUIRED, NOT_STARTED, ALIVE, DEAD = "NOT_REQUIRED", "NOT_STARTED", "ALIVE", "DEAD"
CULL_STRATEGIES = ("deactivate_dead", "keep_dead")


@dataclass(frozen=True)
class Heartbeats:
    """The heartbeat rules of one policy."""

    interval: int | None
    cull_strategy: str = "deactivate_dead"
    resurrection_window: int = 0

    def died_at(self, created_at: int, last_heartbeat_at: int | None) -> int | None:
        if self.interval is None:
            return None
        return (last_heartbeat_at if last_heartbeat_at is not None else created_at) + self.interval + DRIFT

    def status(self, created_at: int, last_heartbeat_at: int | None, now: float) -> str:
        died = self.died_at(created_at, last_heartbeat_at)
        if died is None:
            return NOT_REQUIRED
        if now > died:
            return DEAD
        return NOT_STARTED if last_heartbeat_at is None else ALIVE

    def revivable(self, created_at: int, last_heartbeat_at: int | None, now: float) -> bool:
        """A heartbeat now brings a dead machine back."""
        died = self.died_at(created_at, last_heartbeat_at)
        return died is not None and now <= died + self.resurrection_window

    def culled(self, created_at: int, last_heartbeat_at: int | None, now: float) -> bool:
        """Dead past its resurrection window under ``deactivate_dead``: no longer a machine."""
        died = self.died_at(created_at, last_heartbeat_at)
        return died is not None and self.cull_strategy == "deactivate_dead" and now > died + self.resurrection_window
