"""``/incidents``: serious-incident records (AI Act Art. 73) with their reporting deadline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg

Kind = Literal["serious", "death", "widespread", "critical-infrastructure"]


class Incidents(Surface[R]):
    """Open, update and close incident records; answers carry ``deadline`` and ``overdue``."""

    @operation("GET /incidents")
    def list(self, *, status: Literal["open", "closed"] | None = None) -> R:
        """Incidents, earliest deadline first."""
        return self._request("GET", "/incidents", params={"status": status})

    @operation("POST /incidents")
    def open(
        self,
        title: str,
        *,
        kind: Kind = "serious",
        agents: Sequence[str] = (),
        seq_from: int | None = None,
        seq_to: int | None = None,
        description: str = "",
        aware_at: int | None = None,
    ) -> R:
        """Open a record; ``kind`` sets the reporting clock (15, 10 or 2 days from ``aware_at``)."""
        body = compact(title=title, kind=kind, agents=list(agents), seq_from=seq_from, seq_to=seq_to,
                       description=description, aware_at=aware_at)  # fmt: skip
        return self._request("POST", "/incidents", json=body)

    @operation("GET /incidents/{}")
    def get(self, incident_id: str) -> R:
        return self._request("GET", f"/incidents/{_seg(incident_id)}")

    @operation("PATCH /incidents/{}")
    def update(self, incident_id: str, **changes: Any) -> R:
        """Change fields (``reported_at``, a Unix time, stops the clock)."""
        return self._request("PATCH", f"/incidents/{_seg(incident_id)}", json=changes)

    @operation("POST /incidents/{}/close")
    def close(self, incident_id: str, *, resolution: str | None = None) -> R:
        return self._request("POST", f"/incidents/{_seg(incident_id)}/close", json=compact(resolution=resolution))
