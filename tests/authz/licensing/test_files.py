"""Offline license and machine files: the format, and every attack the client must refuse without
the network — a tampered payload, a foreign key, an expired file, another fingerprint, a rolled-back
clock, missing entitlements, a suspended license."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_client.licenses import FileMark, LicenseError, MemoryMark, verify_license_file
from authz.licensing.signing import public_jwk
from tests.authz.licensing.conftest import Lic

pytestmark = pytest.mark.anyio


async def _checkout(lic: Lic, key: str, **body: Any) -> dict[str, Any]:
    r = await lic.post("/licenses/me/checkout", body, headers={"Authorization": f"License {key}"})
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


def _code(fn: Any) -> str:
    with pytest.raises(LicenseError) as err:
        fn()
    return err.value.code


def _doc(cert: str) -> tuple[str, dict[str, str]]:
    lines = cert.strip().splitlines()
    return lines[0].split("BEGIN ")[1].rstrip("-"), json.loads(base64.b64decode("".join(lines[1:-1])))


def _armor(label: str, doc: dict[str, str]) -> str:
    return f"-----BEGIN {label}-----\n{base64.b64encode(json.dumps(doc).encode()).decode()}\n-----END {label}-----\n"


async def test_machine_file_verifies_offline_and_refuses_every_attack(lic: Lic) -> None:
    _, key = await lic.setup(entitlements=("pro", "sso"), max_machines=2)
    assert (await lic.activate(key, "fp-1")).status_code == 201
    assert (await lic.activate(key, "fp-2")).status_code == 201
    jwks = await lic.jwks()
    out = await _checkout(lic, key, fingerprint="fp-1", ttl=3600)
    cert = out["certificate"]
    assert cert.startswith("-----BEGIN MACHINE FILE-----\n") and cert.endswith("-----END MACHINE FILE-----\n")
    assert out["alg"] == "aes-256-gcm+ed25519" and out["type"] == "machine"
    label, doc = _doc(cert)
    assert set(doc) == {"enc", "sig", "alg"} and label == "MACHINE FILE"
    now = lic.clock.now

    def verify(text: str = cert, **kw: Any) -> Any:
        kw.setdefault("key", key.lower())  # as typed: any case
        kw.setdefault("fingerprint", "fp-1")
        kw.setdefault("clock", lambda: now + 60)
        return verify_license_file(text, jwks, **kw)

    ok = verify(entitlements=["pro"])
    assert ok.kind == "machine" and ok.machine == {"id": ok.machine["id"], "fingerprint": "fp-1"}
    assert ok.entitlements == ["pro", "sso"] and ok.expires_at == ok.issued_at + 3600

    tampered = dict(doc, enc=doc["enc"][:-3] + ("AAA" if doc["enc"][-3:] != "AAA" else "BBB"))
    assert _code(lambda: verify(_armor(label, tampered))) == "SIGNATURE_INVALID"
    relabelled = _armor("LICENSE FILE", doc)  # a machine file passed off as a license file
    assert _code(lambda: verify(relabelled)) == "SIGNATURE_INVALID"
    other = Ed25519PrivateKey.generate()
    assert _code(lambda: verify_license_file(cert, {"keys": [public_jwk(other)]}, key=key, fingerprint="fp-1",
                                             clock=lambda: now + 60)) == "SIGNATURE_INVALID"  # fmt: skip
    assert _code(lambda: verify(clock=lambda: now + 3600)) == "FILE_EXPIRED"
    assert _code(lambda: verify(fingerprint="fp-2")) == "DECRYPTION_FAILED"
    assert _code(lambda: verify(key=None)) == "KEY_REQUIRED"
    assert _code(lambda: verify(entitlements=["pro", "audit"])) == "ENTITLEMENTS_MISSING"
    assert _code(lambda: verify("-----BEGIN LICENSE FILE-----\n!!\n-----END LICENSE FILE-----")) == "FILE_MALFORMED"

    mark = MemoryMark()
    verify(mark=mark, clock=lambda: now + 600)
    assert mark.get() == now + 600
    assert _code(lambda: verify(mark=mark, clock=lambda: now + 600 - 301)) == "CLOCK_ROLLBACK"
    assert _code(lambda: verify(clock=lambda: now - 1000)) == "CLOCK_ROLLBACK"  # before the signed issue time


async def test_plain_machine_file_is_bound_to_its_fingerprint(lic: Lic) -> None:
    _, key = await lic.setup()
    assert (await lic.activate(key, "fp-1")).status_code == 201
    cert = (await _checkout(lic, key, fingerprint="fp-1", encrypt=False))["certificate"]
    jwks = await lic.jwks()
    clock = lambda: lic.clock.now + 1  # noqa: E731
    assert verify_license_file(cert, jwks, fingerprint="fp-1", clock=clock).machine is not None
    assert _code(lambda: verify_license_file(cert, jwks, fingerprint="fp-2", clock=clock)) == "FINGERPRINT_MISMATCH"
    assert _code(lambda: verify_license_file(cert, jwks, clock=clock)) == "FINGERPRINT_MISMATCH"
    refused = await lic.post(
        "/licenses/me/checkout", {"fingerprint": "fp-9"}, headers={"Authorization": f"License {key}"}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "FINGERPRINT_SCOPE_MISMATCH"


async def test_admin_checkout_is_a_readable_license_file(lic: Lic, tmp_path: Path) -> None:
    out, key = await lic.setup(entitlements=("pro",))
    r = await lic.admin_post(f"/licenses/{out['id']}/checkout", {"ttl": 7200})
    assert r.status_code == 200 and r.json()["alg"] == "base64+ed25519"
    cert = r.json()["certificate"]
    assert cert.startswith("-----BEGIN LICENSE FILE-----")
    mark = FileMark(tmp_path / "state" / "mark.json")
    got = verify_license_file(cert, await lic.jwks(), mark=mark, clock=lambda: lic.clock.now + 5)
    assert got.license["id"] == out["id"] and got.kind == "license" and got.machine is None
    assert (tmp_path / "state" / "mark.json").stat().st_mode & 0o777 == 0o600
    assert mark.get() == lic.clock.now + 5
    (tmp_path / "state" / "mark.json").write_text("garbage")
    assert _code(lambda: verify_license_file(cert, {"keys": []}, mark=mark)) == "NO_KEYS"
    assert _code(lambda: mark.get()) == "CLOCK_STATE_INVALID"
    assert (await lic.admin_post(f"/licenses/{out['id']}/suspend")).status_code == 200
    again = await lic.admin_post(f"/licenses/{out['id']}/checkout")
    assert again.status_code == 409 and "SUSPENDED" in again.json()["detail"]
    refused = await lic.post("/licenses/me/checkout", {}, headers={"Authorization": f"License {key}"})
    assert refused.status_code == 403 and refused.json()["code"] == "SUSPENDED"
