"""``agent_client.LicenseClient`` against a real ``authz serve``: validate, activate, heartbeat, check
out and verify offline; then the server goes away: fail closed by default, or a bounded, explicit
grace from the cached signed answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_client.license_client import LicenseClient
from agent_client.licenses import FileMark, LicenseError, MemoryMark, verify_license_file
from conformance.procs import AuthzServer


def fields(output: str) -> dict[str, str]:
    return {k.strip(): v.split()[0] for k, _, v in (ln.partition(": ") for ln in output.splitlines()) if v.strip()}


def test_license_client_end_to_end(authz_server_factory: Callable[..., AuthzServer], tmp_path: Path) -> None:
    server = authz_server_factory(dev=False, start=False)
    server.cli("migrate")
    server.cli("licenses", "products", "add", "app")
    pol = fields(server.cli("licenses", "policies", "add", "--product", "app", "--name", "std", "--entitlement",
                            "pro", "--max-machines", "1", "--heartbeat-interval", "600").stdout)  # fmt: skip
    key = fields(server.cli("licenses", "create", "--policy", pol["policy_id"]).stdout)["key"]
    server.start()
    api = f"{server.issuer}/api/v1"
    jwks: dict[str, Any] = httpx2.get(f"{api}/licenses/jwks", timeout=10).json()
    mark = FileMark(tmp_path / "mark.json")
    strict = LicenseClient(api, jwks, mark=mark)
    lenient = LicenseClient(api, jwks, grace=3600, mark=mark)

    machine = strict.activate(key, "fp-1", name="laptop")
    assert machine["fingerprint"] == "fp-1" and machine["heartbeat_status"] == "NOT_STARTED"
    with pytest.raises(LicenseError) as full:
        strict.activate(key, "fp-2")
    assert full.value.code == "TOO_MANY_MACHINES"
    assert strict.heartbeat(key, machine["id"])["heartbeat_status"] == "ALIVE"
    for client in (strict, lenient):
        v = client.validate(key, fingerprint="fp-1", entitlements=["pro"])
        assert (v.valid, v.code, v.stale) == (True, "VALID", False)
    assert strict.validate(key, entitlements=["sso"]).code == "ENTITLEMENTS_MISSING"
    cert = strict.checkout(key, fingerprint="fp-1", ttl=3600)
    assert verify_license_file(cert, jwks, key=key, fingerprint="fp-1", mark=mark).kind == "machine"
    assert mark.get() >= time.time() - 5

    server.stop()  # the license server is gone
    down = strict.validate(key, fingerprint="fp-1", entitlements=["pro"])
    assert (down.valid, down.code) == (False, "UNREACHABLE")  # fail closed by default
    cached = lenient.validate(key, fingerprint="fp-1", entitlements=["pro"])
    assert (cached.valid, cached.code, cached.stale) == (True, "VALID", True)  # the explicit, bounded grace
    other_scope = lenient.validate(key, fingerprint="fp-9")
    assert (other_scope.valid, other_scope.code) == (False, "UNREACHABLE")  # no answer cached for this question
    expired_grace = LicenseClient(api, jwks, grace=3600, mark=MemoryMark(), clock=lambda: time.time() + 7200)
    expired_grace._cache = dict(lenient._cache)
    late = expired_grace.validate(key, fingerprint="fp-1", entitlements=["pro"])
    assert (late.valid, late.code) == (False, "UNREACHABLE")
    # still verifiable offline, with no server at all
    assert verify_license_file(cert, jwks, key=key, fingerprint="fp-1", mark=mark).license["entitlements"] == ["pro"]
