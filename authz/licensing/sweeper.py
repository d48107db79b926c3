"""The one periodic sweeper: announces dead machines, culls them, announces expiring licenses.

Liveness itself is computed at read time (:mod:`authz.licensing.liveness`), so validation is right
even if the sweeper never runs; the sweeper only does what needs a moment in time: the
``machine.heartbeat.dead`` webhook (once per death: a conditional UPDATE claims it, the outbox's
unique key dedupes), deleting machines a ``deactivate_dead`` policy culls, and ``license.expiring``
(once per license, ``expiring_within`` seconds ahead). Replicas may all run it: every step is a
claim, so nothing is announced twice. One query per pass finds candidates (indexed by license).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from authz.licensing.files import iso
from authz.licensing.liveness import DRIFT, Heartbeats
from authz.licensing.service import Licensing

log = logging.getLogger("authz.licensing.sweeper")
ACTOR = "sweeper"


@dataclass(frozen=True)
class Swept:
    dead: int
    culled: int
    expiring: int


def sweep(lic: Licensing, *, expiring_within: int = 7 * 86400) -> Swept:
    now = lic.clock()
    dead = culled = expiring = 0
    for r in lic.store.heartbeat_machines(dead_before=int(now) - DRIFT):
        hb = Heartbeats(r.heartbeat_interval, r.cull_strategy, r.resurrection_window)
        died = hb.died_at(r.created_at, r.last_heartbeat_at)
        if died is None or now <= died:
            continue
        if r.dead_notified_at is None and lic.store.mark_dead_notified(r.id, r.last_heartbeat_at, int(now)):
            dead += 1
            data = {
                "machine_id": r.id,
                "license_id": r.license_id,
                "fingerprint": r.fingerprint,
                "last_heartbeat_at": iso(r.last_heartbeat_at),
                "died_at": iso(died),
                "cull_strategy": hb.cull_strategy,
                "resurrection_deadline": iso(died + hb.resurrection_window),
            }
            lic.webhooks.enqueue(
                "machine.heartbeat.dead", r.id, f"dead:{r.last_heartbeat_at or r.created_at}", data, now
            )
            lic.audit.record("machine.heartbeat.dead", actor=ACTOR, license=r.license_id, machine=r.id)
        if hb.culled(r.created_at, r.last_heartbeat_at, now) and lic.store.delete_machines([r.id]):
            culled += 1
            lic.forget(r.license_id)
            lic.audit.record("machine.culled", actor=ACTOR, license=r.license_id, machine=r.id)
    for row in lic.store.expiring(int(now) + expiring_within, int(now)):
        if lic.store.mark_expiring_notified(row.id, int(now)):
            expiring += 1
            data = {
                "license_id": row.id,
                "product_id": row.product_id,
                "policy_id": row.policy_id,
                "expires_at": iso(row.expires_at),
                "owner": {"user_id": row.owner_user_id, "customer": row.owner_customer},
            }
            lic.webhooks.enqueue("license.expiring", row.id, f"expiring:{row.expires_at}", data, now)
            lic.audit.record("license.expiring", actor=ACTOR, license=row.id)
    return Swept(dead, culled, expiring)


async def sweep_loop(lic: Licensing, stop: asyncio.Event, interval: float, expiring_within: int) -> None:
    """``sweep`` in a worker thread every ``interval`` seconds until ``stop``; errors are logged."""
    while not stop.is_set():
        try:
            swept = await asyncio.to_thread(sweep, lic, expiring_within=expiring_within)
        except Exception:
            log.exception("license sweep failed; retrying in %.0f s", interval)
        else:
            if swept.dead or swept.culled or swept.expiring:
                log.info("license sweep: %d dead, %d culled, %d expiring", swept.dead, swept.culled, swept.expiring)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
