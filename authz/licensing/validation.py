"""Validation of a license against a scope, in one documented order (the first failing check answers).

Order (Keygen's ``license_validation_service.rb``, reduced to what authz models)::

    1 NOT_FOUND                 no license has this key
    2 REVOKED                   revoked for good
    3 SUSPENDED                 suspended (reinstatable)
    4 EXPIRED                   past expires_at under the ``restrict`` strategy (``maintain`` passes)
    5 PRODUCT_SCOPE_MISMATCH    scope.product is neither the product's id nor its code
    6 ENTITLEMENTS_MISSING      scope.entitlements not all granted
    7 NO_MACHINE                scope.fingerprint given, the license has no machine
    8 FINGERPRINT_SCOPE_MISMATCH  scope.fingerprint given, no machine of the license has it
    9 HEARTBEAT_DEAD            that machine is dead (heartbeats required and missed)
   10 TOO_MANY_MACHINES         more machines than the limit (the limit was lowered after activation)
   11 VALID

A culled machine (dead past its resurrection window under ``deactivate_dead``) no longer exists for
any check, whether or not the sweeper has deleted its row yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from authz.licensing.liveness import DEAD, Heartbeats

CODES = (
    "NOT_FOUND",
    "REVOKED",
    "SUSPENDED",
    "EXPIRED",
    "PRODUCT_SCOPE_MISMATCH",
    "ENTITLEMENTS_MISSING",
    "NO_MACHINE",
    "FINGERPRINT_SCOPE_MISMATCH",
    "HEARTBEAT_DEAD",
    "TOO_MANY_MACHINES",
    "VALID",
)


@dataclass(frozen=True)
class Scope:
    product: str | None = None
    fingerprint: str | None = None
    entitlements: tuple[str, ...] = ()


@dataclass(frozen=True)
class MachineView:
    id: str
    fingerprint: str
    name: str
    platform: str
    created_at: int
    last_heartbeat_at: int | None


@dataclass(frozen=True)
class LicenseView:
    """Everything validation needs about one license, read in one go (and cached briefly)."""

    id: str
    name: str
    status: str
    product_id: str
    product_code: str
    policy_id: str
    expires_at: int | None
    expiration_strategy: str
    entitlements: tuple[str, ...]
    max_machines: int | None
    heartbeats: Heartbeats
    checkout_ttl: int
    owner_user_id: str | None
    owner_customer: str | None
    machines: tuple[MachineView, ...] = field(default=())

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def live_machines(self, now: float) -> list[MachineView]:
        hb = self.heartbeats
        return [m for m in self.machines if not hb.culled(m.created_at, m.last_heartbeat_at, now)]


@dataclass(frozen=True)
class Result:
    valid: bool
    code: str
    detail: str
    machine: MachineView | None = None


def validate(lic: LicenseView | None, scope: Scope, now: float) -> Result:
    if lic is None:
        return Result(False, "NOT_FOUND", "no license has this key")
    if lic.status == "revoked":
        return Result(False, "REVOKED", "the license is revoked")
    if lic.status == "suspended":
        return Result(False, "SUSPENDED", "the license is suspended")
    if lic.expired(now) and lic.expiration_strategy == "restrict":
        return Result(False, "EXPIRED", "the license has expired")
    if scope.product is not None and scope.product not in (lic.product_id, lic.product_code):
        return Result(False, "PRODUCT_SCOPE_MISMATCH", "the license is for another product")
    missing = sorted(set(scope.entitlements) - set(lic.entitlements))
    if missing:
        return Result(False, "ENTITLEMENTS_MISSING", "the license lacks entitlements: " + ", ".join(missing))
    machines = lic.live_machines(now)
    machine = None
    if scope.fingerprint is not None:
        if not machines:
            return Result(False, "NO_MACHINE", "the license has no activated machine")
        machine = next((m for m in machines if m.fingerprint == scope.fingerprint), None)
        if machine is None:
            return Result(False, "FINGERPRINT_SCOPE_MISMATCH", "no machine of the license has this fingerprint")
        if lic.heartbeats.status(machine.created_at, machine.last_heartbeat_at, now) == DEAD:
            return Result(False, "HEARTBEAT_DEAD", "the machine missed its heartbeats", machine)
    if lic.max_machines is not None and len(machines) > lic.max_machines:
        return Result(False, "TOO_MANY_MACHINES", f"more than {lic.max_machines} machines are activated", machine)
    detail = "the license is valid" + (" (expired, access maintained)" if lic.expired(now) else "")
    return Result(True, "VALID", detail, machine)


def entitlements_of(policy: Sequence[str], license_extra: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(policy) | set(license_extra)))
