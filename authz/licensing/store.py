"""SQL storage of products, license policies, licenses and machines (SQLite and PostgreSQL).

Activation is the one contended write: the machine limit must hold when many activations of one
license race. Each activation serialises on its license: ``SELECT ... FOR UPDATE`` of the license row
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite (one writer at a time), then counts and inserts in the
same transaction. The unique ``(license_id, fingerprint)`` makes the same fingerprint the same machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, func, select, update

from authz.licensing.liveness import Heartbeats
from authz.licensing.validation import LicenseView, MachineView, entitlements_of
from authz.storage.db import write_transaction
from authz.storage.models import Agent
from authz.storage.models.licensing import LicensePolicyRow, LicenseRow, MachineRow, ProductRow

L, P = cast(Table, LicenseRow.__table__), cast(Table, LicensePolicyRow.__table__)
PR, M = cast(Table, ProductRow.__table__), cast(Table, MachineRow.__table__)


class TooManyMachines(Exception):
    """The license already has as many machines as its limit allows."""


@dataclass(frozen=True)
class Activation:
    machine: MachineView
    created: bool
    culled: tuple[str, ...]  # machines dead past their resurrection window, deleted to free a seat


def _machine(row: Any) -> MachineView:
    return MachineView(row.id, row.fingerprint, row.name, row.platform, row.created_at, row.last_heartbeat_at)


class LicenseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._view_query = (
            select(
                L.c.id,
                L.c.name,
                L.c.status,
                L.c.product_id,
                PR.c.code,
                L.c.policy_id,
                L.c.expires_at,
                P.c.expiration_strategy,
                P.c.entitlements.label("policy_entitlements"),
                L.c.entitlements,
                func.coalesce(L.c.max_machines, P.c.max_machines).label("max_machines"),
                P.c.heartbeat_interval,
                P.c.cull_strategy,
                P.c.resurrection_window,
                P.c.checkout_ttl,
                L.c.owner_user_id,
                L.c.owner_customer,
            )
            .join(P, P.c.id == L.c.policy_id)
            .join(PR, PR.c.id == L.c.product_id)
        )

    def _write(self) -> AbstractContextManager[Connection]:
        """A write transaction; on SQLite it takes the write lock at once (``BEGIN IMMEDIATE``)."""
        return write_transaction(self.engine)

    # -- products and policies --------------------------------------------------------------------
    def add(self, table: Any, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.insert().values(**values))

    def product(self, ref: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(PR).where((PR.c.id == ref) | (PR.c.code == ref))).first()

    def products(self) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(select(PR).order_by(PR.c.created_at, PR.c.id)).all()

    def policy(self, policy_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(P).where(P.c.id == policy_id)).first()

    def policies(self, product_id: str | None = None) -> Sequence[Any]:
        q = select(P).order_by(P.c.created_at, P.c.id)
        if product_id:
            q = q.where(P.c.product_id == product_id)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    # -- licenses -----------------------------------------------------------------------------
    def license(self, license_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(L).where(L.c.id == license_id)).first()

    def licenses(
        self,
        *,
        product_id: str | None,
        status: str | None,
        owner: str | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> Sequence[Any]:
        q = select(L).order_by(L.c.created_at, L.c.id).limit(limit)
        if product_id:
            q = q.where(L.c.product_id == product_id)
        if status:
            q = q.where(L.c.status == status)
        if owner:
            q = q.where((L.c.owner_user_id == owner) | (L.c.owner_customer == owner))
        if after:
            q = q.where((L.c.created_at > after[0]) | and_(L.c.created_at == after[0], L.c.id > after[1]))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def view(self, *, digest: str | None = None, license_id: str | None = None) -> LicenseView | None:
        """The license with its policy, product and machines (two indexed reads), or None."""
        q = self._view_query.where(L.c.key_digest == digest if digest is not None else L.c.id == license_id)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
            if row is None:
                return None
            machines = conn.execute(select(M).where(M.c.license_id == row.id).order_by(M.c.created_at, M.c.id)).all()
        return LicenseView(
            id=row.id,
            name=row.name,
            status=row.status,
            product_id=row.product_id,
            product_code=row.code,
            policy_id=row.policy_id,
            expires_at=row.expires_at,
            expiration_strategy=row.expiration_strategy,
            entitlements=entitlements_of(row.policy_entitlements or (), row.entitlements or ()),
            max_machines=row.max_machines,
            heartbeats=Heartbeats(row.heartbeat_interval, row.cull_strategy, row.resurrection_window),
            checkout_ttl=row.checkout_ttl,
            owner_user_id=row.owner_user_id,
            owner_customer=row.owner_customer,
            machines=tuple(_machine(m) for m in machines),
        )

    def set_status(self, license_id: str, status: str, *, when: Sequence[str], now: int) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                update(L)
                .where(L.c.id == license_id, L.c.status.in_(when))
                .values(status=status, status_changed_at=now, updated_at=now)
            ).rowcount
        return bool(n)

    def update_license(self, license_id: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(L).where(L.c.id == license_id).values(**values))

    def agents_of(self, license_id: str, statuses: Sequence[str]) -> list[str]:
        with self.engine.connect() as conn:
            q = select(Agent.id).where(Agent.owner_license_id == license_id, Agent.status.in_(statuses))
            return list(conn.execute(q.order_by(Agent.id)).scalars())

    def attach_agent(self, agent_id: str, license_id: str | None) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(update(Agent).where(Agent.id == agent_id).values(owner_license_id=license_id)).rowcount
            )

    # -- machines -----------------------------------------------------------------------------
    def machine(self, machine_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(M).where(M.c.id == machine_id)).first()

    def machines(self, license_id: str | None) -> Sequence[Any]:
        q = select(M).order_by(M.c.created_at, M.c.id)
        if license_id:
            q = q.where(M.c.license_id == license_id)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def activate(
        self, lic: LicenseView, *, machine_id: str, fingerprint: str, name: str, platform: str, now: int
    ) -> Activation:
        """Add a machine unless the license is full; the same fingerprint returns the existing machine."""
        with self._write() as conn:
            if not self._sqlite:  # serialise activations of this license until commit
                conn.execute(select(L.c.id).where(L.c.id == lic.id).with_for_update())
            rows = conn.execute(select(M).where(M.c.license_id == lic.id)).all()
            same = next((r for r in rows if r.fingerprint == fingerprint), None)
            hb = lic.heartbeats
            culled = [r.id for r in rows if r is not same and hb.culled(r.created_at, r.last_heartbeat_at, now)]
            if same is not None and hb.culled(same.created_at, same.last_heartbeat_at, now):
                culled.append(same.id)
                same = None
            if culled:
                conn.execute(delete(M).where(M.c.id.in_(culled)))
            if same is not None:
                return Activation(_machine(same), False, tuple(culled))
            if lic.max_machines is not None and len(rows) - len(culled) >= lic.max_machines:
                raise TooManyMachines
            values = {
                "id": machine_id,
                "license_id": lic.id,
                "fingerprint": fingerprint,
                "name": name,
                "platform": platform,
                "created_at": now,
                "last_heartbeat_at": None,
                "dead_notified_at": None,
            }
            conn.execute(M.insert().values(**values))
        return Activation(MachineView(machine_id, fingerprint, name, platform, now, None), True, tuple(culled))

    def heartbeat(self, machine_id: str, now: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(M).where(M.c.id == machine_id).values(last_heartbeat_at=now, dead_notified_at=None))

    def delete_machines(self, machine_ids: Sequence[str]) -> int:
        if not machine_ids:
            return 0
        with self.engine.begin() as conn:
            return int(conn.execute(delete(M).where(M.c.id.in_(list(machine_ids)))).rowcount or 0)

    # -- the sweeper's reads ------------------------------------------------------------------
    def heartbeat_machines(self, dead_before: int) -> Sequence[Any]:
        """Machines of heartbeat policies whose basis (last heartbeat, else activation) is older than
        ``dead_before`` minus their interval: candidates for death announcements and culling."""
        basis = func.coalesce(M.c.last_heartbeat_at, M.c.created_at)
        q = (
            select(M, L.c.policy_id, P.c.heartbeat_interval, P.c.cull_strategy, P.c.resurrection_window)
            .join(L, L.c.id == M.c.license_id)
            .join(P, P.c.id == L.c.policy_id)
            .where(P.c.heartbeat_interval.is_not(None), basis + P.c.heartbeat_interval < dead_before)
            .order_by(M.c.id)
        )
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def mark_dead_notified(self, machine_id: str, basis: int | None, now: int) -> bool:
        """Claim the announcement of one death (once: the row must still be unannounced and unchanged)."""
        with self.engine.begin() as conn:
            n = conn.execute(
                update(M)
                .where(
                    M.c.id == machine_id,
                    M.c.dead_notified_at.is_(None),
                    M.c.last_heartbeat_at.is_(None) if basis is None else M.c.last_heartbeat_at == basis,
                )
                .values(dead_notified_at=now)
            ).rowcount
        return bool(n)

    def expiring(self, until: int, now: int) -> Sequence[Any]:
        q = select(L).where(
            L.c.status == "active",
            L.c.expires_at.is_not(None),
            L.c.expires_at > now,
            L.c.expires_at <= until,
            L.c.expiring_notified_at.is_(None),
        )
        with self.engine.connect() as conn:
            return conn.execute(q.order_by(L.c.id)).all()

    def mark_expiring_notified(self, license_id: str, now: int) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                update(L)
                .where(L.c.id == license_id, L.c.expiring_notified_at.is_(None))
                .values(expiring_notified_at=now)
            ).rowcount
        return bool(n)
