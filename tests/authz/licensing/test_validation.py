"""validate-key: every code in its documented order, signed answers with the nonce inside, bad input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa

from agent_client.licenses import LicenseError, verify_response
from authz.licensing.keys import MalformedKey, generate_key, normalize
from authz.licensing.liveness import Heartbeats
from authz.licensing.validation import CODES, LicenseView, MachineView, Scope, validate
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import ASFactory
from tests.authz.licensing.conftest import Clock, Lic

pytestmark = pytest.mark.anyio
NOW = 1_900_000_000


def _failing_everything() -> tuple[LicenseView, Scope]:
    dead = MachineView("mach_1", "fp-1", "", "", NOW - 10_000, NOW - 10_000)
    other = MachineView("mach_2", "fp-2", "", "", NOW - 10, NOW - 10)
    view = LicenseView(
        id="lic_1", name="x", status="revoked", product_id="prod_1", product_code="app", policy_id="lpol_1",
        expires_at=NOW - 1, expiration_strategy="restrict", entitlements=("basic",), max_machines=1,
        heartbeats=Heartbeats(60, "keep_dead", 0), checkout_ttl=3600, owner_user_id=None, owner_customer=None,
        machines=(),
    )  # fmt: skip
    scope = Scope(product="other", fingerprint="fp-1", entitlements=("pro",))
    return replace(view, machines=(dead, other)), scope


def test_codes_come_in_the_documented_order() -> None:
    """Start from a license failing every check; fix one cause at a time: the codes appear in order."""
    view, scope = _failing_everything()
    seen = [validate(None, scope, NOW).code]
    fixes: list[Callable[[LicenseView, Scope], tuple[LicenseView, Scope]]] = [
        lambda v, s: (replace(v, status="suspended"), s),
        lambda v, s: (replace(v, status="active"), s),
        lambda v, s: (replace(v, expires_at=NOW + 100), s),
        lambda v, s: (v, replace(s, product="app")),
        lambda v, s: (replace(v, entitlements=("basic", "pro"), machines=()), s),
        lambda v, s: (replace(v, machines=(MachineView("mach_2", "fp-2", "", "", NOW - 10, NOW - 10),)), s),
        lambda v, s: (
            replace(v, machines=(*v.machines, MachineView("mach_1", "fp-1", "", "", NOW - 999, NOW - 999))),
            s,
        ),
        lambda v, s: (replace(v, machines=tuple(replace(m, last_heartbeat_at=NOW - 5) for m in v.machines)), s),
        lambda v, s: (replace(v, max_machines=2), s),
    ]
    for fix in fixes:
        seen.append(validate(view, scope, NOW).code)
        view, scope = fix(view, scope)
    seen.append(validate(view, scope, NOW).code)
    assert seen == ["NOT_FOUND", *CODES[1:]]
    assert seen[-1] == "VALID"


def test_maintain_access_keeps_an_expired_license_valid() -> None:
    view, _ = _failing_everything()
    view = replace(view, status="active", expiration_strategy="maintain", machines=(), entitlements=("pro",))
    result = validate(view, Scope(), NOW)
    assert (result.valid, result.code) == (True, "VALID")
    assert "expired" in result.detail


def test_key_format_checksum_and_normalisation() -> None:
    key = generate_key()
    assert key.startswith("LK-") and len(key) == 3 + 36 + 5
    assert normalize(key.lower().replace("-", " ")) == key
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in (broken, "LK-123", "x" * 200, key.replace("LK", "XX")):
        with pytest.raises(MalformedKey):
            normalize(bad)


async def test_every_code_over_http(lic: Lic) -> None:
    await lic.product("other")
    out, key = await lic.setup(entitlements=("pro",), max_machines=2, heartbeat_interval=60, cull_strategy="keep_dead")
    assert (await lic.validate(generate_key()))["meta"]["code"] == "NOT_FOUND"
    first = await lic.validate(key)
    assert first["meta"]["valid"] is True and first["meta"]["code"] == "VALID"
    assert first["data"]["id"] == out["id"] and first["data"]["entitlements"] == ["pro"]
    assert (await lic.validate(key, product="other"))["meta"]["code"] == "PRODUCT_SCOPE_MISMATCH"
    assert (await lic.validate(key, product="app"))["meta"]["code"] == "VALID"
    assert (await lic.validate(key, entitlements=["pro", "sso"]))["meta"]["code"] == "ENTITLEMENTS_MISSING"
    assert (await lic.validate(key, fingerprint="fp-a"))["meta"]["code"] == "NO_MACHINE"
    assert (await lic.activate(key, "fp-a")).status_code == 201
    assert (await lic.validate(key, fingerprint="fp-b"))["meta"]["code"] == "FINGERPRINT_SCOPE_MISMATCH"
    ok = await lic.validate(key, fingerprint="fp-a")
    assert ok["meta"]["code"] == "VALID" and ok["meta"]["machine"]["heartbeat_status"] == "NOT_STARTED"
    lic.clock.now += 200
    assert (await lic.validate(key, fingerprint="fp-a"))["meta"]["code"] == "HEARTBEAT_DEAD"
    lic.clock.now -= 200
    assert (await lic.activate(key, "fp-b")).status_code == 201
    lic.svc.store.update_license(out["id"], {"max_machines": 1})
    lic.svc.forget(out["id"])
    assert (await lic.validate(key))["meta"]["code"] == "TOO_MANY_MACHINES"
    lic.svc.store.update_license(out["id"], {"max_machines": None, "expires_at": int(lic.clock.now) - 1})
    lic.svc.forget(out["id"])
    assert (await lic.validate(key))["meta"]["code"] == "EXPIRED"
    lic.svc.store.update_license(out["id"], {"expires_at": None})
    r = await lic.admin_post(f"/licenses/{out['id']}/suspend", {"reason": "unpaid"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert (await lic.validate(key))["meta"]["code"] == "SUSPENDED"  # at once: the cache was dropped
    assert (await lic.admin_post(f"/licenses/{out['id']}/revoke")).status_code == 200
    assert (await lic.validate(key))["meta"]["code"] == "REVOKED"
    assert (await lic.admin_post(f"/licenses/{out['id']}/reinstate")).status_code == 409


async def test_signed_answer_echoes_the_nonce_and_refuses_replay(lic: Lic) -> None:
    _, key = await lic.setup()
    jwks = await lic.jwks()
    assert [k["crv"] for k in jwks["keys"]] == ["Ed25519"] and "d" not in jwks["keys"][0]
    r = await lic.post("/licenses/actions/validate-key", {"key": key, "nonce": "abc"})
    doc = verify_response(r.content, r.headers["authz-signature"], jwks, nonce="abc", clock=lic.clock)
    assert doc["meta"]["nonce"] == "abc" and doc["meta"]["ts"] == int(lic.clock.now)
    with pytest.raises(LicenseError) as replay:  # the captured answer, offered for a request with another nonce
        verify_response(r.content, r.headers["authz-signature"], jwks, nonce="xyz", clock=lic.clock)
    assert replay.value.code == "REPLAYED"
    forged = r.content.replace(b'"valid":true', b'"valid":false')
    assert forged != r.content
    with pytest.raises(LicenseError) as tampered:
        verify_response(forged, r.headers["authz-signature"], jwks, nonce="abc", clock=lic.clock)
    assert tampered.value.code == "SIGNATURE_INVALID"
    with pytest.raises(LicenseError) as stale:
        verify_response(r.content, r.headers["authz-signature"], jwks, nonce="abc", clock=lambda: lic.clock.now + 3600)
    assert stale.value.code == "RESPONSE_STALE"


async def test_bad_input_is_a_clear_422_and_changes_nothing(lic: Lic) -> None:
    _, key = await lic.setup(max_machines=3)
    engine = lic.svc.store.engine

    def counts() -> list[int]:
        with engine.connect() as c:
            return [c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("licenses", "license_machines", "license_policies", "license_products")]  # fmt: skip

    before = counts()
    r = await lic.post("/licenses/actions/validate-key", {"key": "LK-NOT-A-KEY", "nonce": "n"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "key"
    assert "LK-NOT-A-KEY" not in r.text
    r = await lic.post("/licenses/actions/validate-key", {"key": key, "scope": {"fingerprint": "f" * 10_000}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope.fingerprint"
    r = await lic.activate(key, "f" * 256)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "fingerprint"
    r = await lic.activate(key, "ok\x00")
    assert r.status_code == 422
    r = await lic.post("/machines/actions/activate", {"fingerprint": "fp"}, headers={"Authorization": "License nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("License")
    r = await lic.admin_post("/license-policies", {"product": "no-such-product", "name": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "product"
    r = await lic.admin_post("/licenses", {"policy": "lpol_nope"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "policy"
    r = await lic.admin_post("/license-policies", {"product": "app", "name": "x", "heartbeat_interval": 5})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "heartbeat_interval"
    for body in (b"[1,2", b"[" * 15_000):  # not JSON; nested past the limit (a RecursionError: a 500 before)
        r = await lic.post("/licenses/actions/validate-key", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body", r.text
    assert counts() == before


async def test_rate_limits_per_key_and_misses_per_ip(as_factory: ASFactory) -> None:
    srv = await as_factory(license_rate_per_key=3, license_rate_misses_per_ip=2)
    lic = Lic(srv, {"Authorization": f"Bearer {await admin_token(srv)}"}, Clock(1_900_000_000.0))
    assert srv.ctx.licensing is not None
    srv.ctx.licensing.limiter.clock = lic.clock  # one rate window for the whole test
    _, key = await lic.setup()
    for _ in range(3):
        assert (await lic.post("/licenses/actions/validate-key", {"key": key})).status_code == 200
    r = await lic.post("/licenses/actions/validate-key", {"key": key})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    for _ in range(2):
        assert (await lic.post("/licenses/actions/validate-key", {"key": generate_key()})).status_code == 200
    r = await lic.post("/licenses/actions/validate-key", {"key": generate_key()})
    assert r.status_code == 429  # key guessing from this address stops here
    srv.ctx.audit.flush()
    with lic.svc.store.engine.connect() as c:
        events = [row[0] for row in c.execute(sa.text("SELECT event FROM audit_events"))]
    assert events.count("license.rate_limited") == 2  # once per bucket and window, not per request


async def test_no_key_or_file_content_in_logs_or_audit(lic: Lic, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, key = await lic.setup()
    await lic.validate(key)
    await lic.validate(generate_key())
    r = await lic.activate(key, "fp-1")
    assert r.status_code == 201
    co = await lic.post("/licenses/me/checkout", {"fingerprint": "fp-1"}, headers={"Authorization": f"License {key}"})
    assert co.status_code == 200
    cert = co.json()["data"]["certificate"]
    lic.srv.ctx.audit.flush()
    with lic.svc.store.engine.connect() as c:
        audit = " ".join(str(tuple(row)) for row in c.execute(sa.text("SELECT * FROM audit_events")))
    blob = cert.splitlines()[1]
    compact = key.replace("-", "")
    for text in (caplog.text, audit):
        assert key not in text and compact not in text and blob not in text
    assert "license.checked_out" in audit and "machine.activated" in audit
