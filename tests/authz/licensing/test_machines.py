"""Machines: the limit under 32 concurrent activations, heartbeat death and resurrection with an
injected clock, the sweeper (webhooks once, culling), and suspension cascading to agents and tokens."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa

from authz import services
from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle
from authz.licensing.service import LicenseRefused
from authz.licensing.sweeper import sweep
from tests.authz.identity.agents.conftest import deps, next_second, secret_token
from tests.authz.licensing.conftest import Lic

pytestmark = pytest.mark.anyio
N = 32


async def test_machine_limit_holds_under_32_concurrent_activations(lic: Lic) -> None:
    out, _ = await lic.setup(max_machines=5)
    svc = lic.svc
    barrier = threading.Barrier(N)
    results: list[str] = []
    lock = threading.Lock()

    def activate(i: int) -> None:
        barrier.wait()
        try:
            act = svc.activate(out["id"], fingerprint=f"fp-{i % 20}", name="", platform="", actor="test")
            outcome = "created" if act.created else "same"
        except LicenseRefused as exc:
            outcome = exc.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=activate, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == N
    assert results.count("created") == 5
    assert set(results) <= {"created", "same", "TOO_MANY_MACHINES"}
    rows = svc.store.machines(out["id"])
    assert len(rows) == 5 and len({r.fingerprint for r in rows}) == 5


async def test_same_fingerprint_is_the_same_machine_and_deactivation_frees_the_seat(lic: Lic) -> None:
    _, key = await lic.setup(max_machines=1)
    first = await lic.activate(key, "fp-1", name="laptop")
    again = await lic.activate(key, "fp-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    full = await lic.activate(key, "fp-2")
    assert full.status_code == 409 and full.json()["code"] == "TOO_MANY_MACHINES"
    mid = first.json()["data"]["id"]
    r = await lic.post(f"/machines/{mid}/actions/deactivate", None, headers={"Authorization": f"License {key}"})
    assert r.status_code == 200 and r.json()["data"]["deactivated"] is True
    assert (await lic.activate(key, "fp-2")).status_code == 201


async def test_heartbeat_death_resurrection_and_cull_with_an_injected_clock(lic: Lic) -> None:
    _, key = await lic.setup(max_machines=1, heartbeat_interval=60, resurrection_window=120)
    t0 = lic.clock.now
    r = await lic.activate(key, "fp-1")
    mid = r.json()["data"]["id"]
    assert r.json()["data"]["heartbeat_status"] == "NOT_STARTED"
    assert (await lic.heartbeat(key, mid)).json()["data"]["heartbeat_status"] == "ALIVE"
    lic.clock.now = t0 + 60 + 30  # interval + drift: still alive
    assert (await lic.validate(key, fingerprint="fp-1"))["meta"]["code"] == "VALID"
    lic.clock.now = t0 + 60 + 31
    assert (await lic.validate(key, fingerprint="fp-1"))["meta"]["code"] == "HEARTBEAT_DEAD"
    lic.clock.now = t0 + 91 + 100  # dead for 100 s, inside the 120 s window: a heartbeat revives it
    revived = await lic.heartbeat(key, mid)
    assert revived.status_code == 200 and revived.json()["data"]["heartbeat_status"] == "ALIVE"
    assert (await lic.validate(key, fingerprint="fp-1"))["meta"]["code"] == "VALID"
    t1 = lic.clock.now
    lic.clock.now = t1 + 91 + 121  # dead past the window: no revival, and the seat is free again
    late = await lic.heartbeat(key, mid)
    assert late.status_code == 404  # culled at read time: the machine no longer exists for the license
    assert (await lic.validate(key, fingerprint="fp-1"))["meta"]["code"] == "NO_MACHINE"
    replacement = await lic.activate(key, "fp-2")
    assert replacement.status_code == 201  # the limit is 1: the culled machine no longer counts
    lic.srv.ctx.audit.flush()
    with lic.svc.store.engine.connect() as c:
        events = [e for (e,) in c.execute(sa.text("SELECT event FROM audit_events"))]
    assert "machine.heartbeat.resurrected" in events and "machine.culled" in events


async def test_keep_dead_machine_is_refused_a_heartbeat_after_the_window(lic: Lic) -> None:
    _, key = await lic.setup(heartbeat_interval=60, cull_strategy="keep_dead", resurrection_window=0)
    r = await lic.activate(key, "fp-1")
    mid = r.json()["data"]["id"]
    lic.clock.now += 200
    dead = await lic.heartbeat(key, mid)
    assert dead.status_code == 409 and dead.json()["code"] == "HEARTBEAT_DEAD"
    assert (await lic.validate(key, fingerprint="fp-1"))["meta"]["code"] == "HEARTBEAT_DEAD"


async def test_sweeper_announces_deaths_and_expiry_once_and_culls(lic: Lic) -> None:
    hook = await lic.admin_post("/license-webhooks", {"url": "https://hooks.example.com/licensing"})
    assert hook.status_code == 201 and hook.json()["secret"].startswith("whsec_")
    _, key = await lic.setup(heartbeat_interval=60, resurrection_window=60)
    expiring, _ = await lic.license((await lic.policy())["id"], expires_at=int(lic.clock.now) + 3 * 86400)
    keep = await lic.license((await lic.policy(cull_strategy="keep_dead", heartbeat_interval=60))["id"])
    mid = (await lic.activate(key, "fp-1")).json()["data"]["id"]
    kid = (await lic.activate(keep[1], "fp-k")).json()["data"]["id"]
    swept = sweep(lic.svc)
    assert (swept.dead, swept.culled, swept.expiring) == (0, 0, 1)
    lic.clock.now += 100  # both machines dead; fp-1 still revivable
    assert sweep(lic.svc).dead == 2
    assert sweep(lic.svc).dead == 0  # announced once
    lic.clock.now += 100  # past fp-1's resurrection window: culled; keep_dead stays
    s = sweep(lic.svc)
    assert (s.dead, s.culled) == (0, 1)
    assert lic.svc.store.machine(mid) is None and lic.svc.store.machine(kid) is not None
    with lic.svc.store.engine.connect() as c:
        rows = c.execute(sa.text("SELECT budget_id, endpoint_id, payload FROM webhook_outbox ORDER BY id")).all()
    events = sorted((json.loads(p)["type"], b) for b, _, p in rows)
    assert events == sorted([("license.expiring", expiring["id"]), ("machine.heartbeat.dead", mid),
                             ("machine.heartbeat.dead", kid)])  # fmt: skip
    assert {e for _, e, _ in rows} == {hook.json()["id"]}
    ctx = lic.srv.ctx
    assert ctx.budgets is not None
    worker = services.webhook_worker(ctx.settings, ctx.budgets, lic.svc.store.engine, lic.svc)
    try:
        assert worker.targets(hook.json()["id"]) == ("https://hooks.example.com/licensing", hook.json()["secret"])
    finally:
        worker.close()


async def test_suspending_a_license_suspends_its_agents_and_kills_their_tokens(lic: Lic) -> None:
    srv = lic.srv
    out, key = await lic.setup()
    agent = lifecycle.create_agent(deps(srv), name="paid-agent", actor="test")
    issued = creds.issue_credential(deps(srv), agent.id, kind="secret", actor="test")
    assert issued.secret is not None
    r = await lic.admin_post(f"/licenses/{out['id']}/agents", {"agent_id": agent.id})
    assert r.status_code == 200
    tok = await secret_token(srv, agent.id, issued.secret)
    assert tok.status_code == 200
    token = tok.json()["access_token"]
    assert (await srv.introspect(token))["active"] is True
    next_second()
    r = await lic.admin_post(f"/licenses/{out['id']}/suspend", {"reason": "chargeback"})
    assert r.status_code == 200
    assert srv.ctx.store.get_agent(agent.id).status == "suspended"  # type: ignore[union-attr]
    assert (await srv.introspect(token))["active"] is False
    refused = await secret_token(srv, agent.id, issued.secret)
    assert refused.status_code in (400, 401)
    assert refused.json()["error"] in ("invalid_client", "unauthorized_client")
    assert (await lic.validate(key))["meta"]["code"] == "SUSPENDED"
    assert (await lic.activate(key, "fp-x")).json()["code"] == "SUSPENDED"


async def test_an_agent_is_created_only_under_a_license_in_force(lic: Lic) -> None:
    out, _ = await lic.setup()
    ok = await lic.admin_post("/agents", {"name": "paid", "owner_license_id": out["id"]})
    assert ok.status_code == 201 and ok.json()["owner_license_id"] == out["id"]
    foreign = await lic.admin_post("/agents", {"name": "ghost", "owner_license_id": "lic_elsewhere"})
    assert foreign.status_code == 201  # not one of ours: stored as given (billing's compatibility alias)
    assert (await lic.admin_post(f"/licenses/{out['id']}/suspend")).status_code == 200
    assert lic.srv.ctx.store.get_agent(ok.json()["id"]).status == "suspended"  # type: ignore[union-attr]
    late = await lic.admin_post("/agents", {"name": "late", "owner_license_id": out["id"]})
    assert late.status_code == 422 and "suspended" in late.json()["errors"][0]["detail"]
