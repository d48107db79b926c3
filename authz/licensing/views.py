"""The JSON shapes of licenses and machines: one place, so REST, files and the CLI agree."""

from __future__ import annotations

from typing import Any

from authz.licensing.files import iso
from authz.licensing.validation import LicenseView, MachineView


def machine_json(m: MachineView, lic: LicenseView, now: float) -> dict[str, Any]:
    hb = lic.heartbeats
    died = hb.died_at(m.created_at, m.last_heartbeat_at)
    return {
        "id": m.id,
        "license_id": lic.id,
        "fingerprint": m.fingerprint,
        "name": m.name,
        "platform": m.platform,
        "created_at": iso(m.created_at),
        "last_heartbeat_at": iso(m.last_heartbeat_at),
        "heartbeat_status": hb.status(m.created_at, m.last_heartbeat_at, now),
        "heartbeat_deadline": iso(died),
    }


def license_json(lic: LicenseView, now: float, *, machines: bool = False) -> dict[str, Any]:
    live = lic.live_machines(now)
    out: dict[str, Any] = {
        "id": lic.id,
        "name": lic.name,
        "status": lic.status,
        "product": {"id": lic.product_id, "code": lic.product_code},
        "policy_id": lic.policy_id,
        "expires_at": iso(lic.expires_at),
        "expired": lic.expired(now),
        "expiration_strategy": lic.expiration_strategy,
        "entitlements": list(lic.entitlements),
        "max_machines": lic.max_machines,
        "machines_count": len(live),
        "heartbeat_interval": lic.heartbeats.interval,
        "owner": {"user_id": lic.owner_user_id, "customer": lic.owner_customer},
    }
    if machines:
        out["machines"] = [machine_json(m, lic, now) for m in live]
    return out


def file_license(lic: LicenseView) -> dict[str, Any]:
    """What a license file carries about its license (nothing that changes between heartbeats)."""
    return {
        "id": lic.id,
        "name": lic.name,
        "status": lic.status,
        "product": {"id": lic.product_id, "code": lic.product_code},
        "policy_id": lic.policy_id,
        "expiry": iso(lic.expires_at),
        "expires_at": lic.expires_at,
        "expiration_strategy": lic.expiration_strategy,
        "entitlements": list(lic.entitlements),
        "max_machines": lic.max_machines,
    }
