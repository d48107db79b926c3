"""Policies stored in the database: the admin API writes versions, issuance and replicas follow."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import policies
from authz.app import build_context
from authz.sync import ChangeWatcher
from policies.loader import read_sources
from tests.authz.admin.conftest import admin_token
from tests.authz.conftest import AS, ASFactory

pytestmark = pytest.mark.anyio

# The demo rule narrowed to tools:read: with it, tools:write disappears from issued tokens.
READ_ONLY_DEMO = (
    '@id("demo.loopback-read")\n'
    "permit (\n"
    "  principal,\n"
    '  action == Authz::Action::"obtain_scope",\n'
    "  resource\n"
    ")\n"
    'when { resource.server.loopback && resource.name == "tools:read" };\n'
)


def embedded_sources() -> dict[str, str]:
    return read_sources(policies.DEFAULT_DIR)[1]


def read_only_sources() -> dict[str, str]:
    return {**embedded_sources(), "servers/demo.cedar": READ_ONLY_DEMO}


@pytest.fixture
async def srv(as_factory: ASFactory) -> AS:
    return await as_factory(policies="db")


async def headers(srv: AS, scopes: str = "admin:read admin:write", name: str = "ops") -> dict[str, str]:
    return {"Authorization": f"Bearer {await admin_token(srv, scopes, name)}"}


_ids = itertools.count()


async def granted(srv: AS) -> set[str]:
    reg = srv.machine_client(client_id=f"machine-{next(_ids)}")
    r = await srv.client_credentials(reg, scope="tools:read tools:write")
    assert r.status_code == 200, r.text
    return set(r.json()["scope"].split())


async def put(srv: AS, h: dict[str, str], body: dict[str, Any]) -> Any:
    return await srv.http.put("/api/v1/policies", json=body, headers=h)


async def test_a_valid_set_becomes_the_next_issuance_and_the_history_lists_every_version(srv: AS) -> None:
    h = await headers(srv)
    assert await granted(srv) == {"tools:read", "tools:write"}  # the embedded set
    assert (await srv.http.get("/api/v1/policies", headers=h)).status_code == 404  # nothing stored yet

    r = await put(srv, h, {"sources": embedded_sources(), "comment": "baseline"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["version"] >= 1 and first["active"] and first["comment"] == "baseline"
    assert len(first["sha256"]) == 64
    srv.ctx.audit.flush()
    deployed = [e for e in srv.ctx.store.list_audit(0, 1000) if e.event == "policy.deployed"]
    assert [(e.detail["sha256"], e.detail["version"], e.detail["operator_change"]) for e in deployed] == [
        (first["sha256"], first["version"], True)
    ]
    assert "demo.loopback-tools" in first["policy_ids"]
    r = await put(srv, h, {"sources": read_only_sources(), "comment": "read only"})
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["version"] > first["version"] and second["sha256"] != first["sha256"]

    assert await granted(srv) == {"tools:read"}  # tools:write disappeared
    assert srv.ctx.policy.version == second["version"]

    active = (await srv.http.get("/api/v1/policies", headers=h)).json()
    assert active["version"] == second["version"] and active["sources"]["servers/demo.cedar"] == READ_ONLY_DEMO
    assert active["schema"] == read_sources(policies.DEFAULT_DIR)[0]  # schema defaulted to the embedded one
    history = (await srv.http.get("/api/v1/policies/versions", headers=h)).json()["items"]
    assert [(v["version"], v["active"], v["comment"]) for v in history] == [
        (second["version"], True, "read only"),
        (first["version"], False, "baseline"),
    ]
    assert {v["author"] for v in history} == {first["author"]} and first["author"]
    old = (await srv.http.get(f"/api/v1/policies/versions/{first['version']}", headers=h)).json()
    assert old["active"] is False and old["sha256"] == first["sha256"]
    assert (await srv.http.get("/api/v1/policies/versions/999", headers=h)).status_code == 404
    assert (await srv.http.get("/api/v1/policies/versions/abc", headers=h)).status_code == 404


async def test_an_invalid_set_is_refused_whole_with_located_problems_and_nothing_changes(srv: AS) -> None:
    h = await headers(srv)
    assert (await put(srv, h, {"sources": read_only_sources()})).status_code == 201
    broken = {**read_only_sources(), "servers/broken.cedar": '@id("x")\npermit (principal, action, resource\n'}
    r = await put(srv, h, {"sources": broken, "comment": "broken"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problems = r.json()["problems"]
    assert problems and all({"file", "line", "col", "message"} <= set(p) for p in problems)
    assert any(p["file"] == "servers/broken.cedar" and p["line"] >= 1 and p["col"] >= 1 for p in problems)
    assert any(e["pointer"] == "#/sources/servers~1broken.cedar" for e in r.json()["errors"])

    r = await put(srv, h, {"sources": embedded_sources(), "schema": "entity Broken {"})
    assert r.status_code == 422 and r.json()["problems"][0]["file"] == "schema.cedarschema"

    history = (await srv.http.get("/api/v1/policies/versions", headers=h)).json()["items"]
    assert len(history) == 1  # nothing stored
    assert await granted(srv) == {"tools:read"}  # issuance unchanged

    r = await put(srv, h, {"sources": {}})
    assert r.status_code == 422  # at least one policy file


async def test_a_replica_on_the_same_database_picks_up_the_new_version(srv: AS) -> None:
    replica = build_context(srv.settings)
    try:
        watcher = ChangeWatcher(replica)
        watcher.poll()  # first poll: starts at the head of the feed
        assert replica.policy.version is None and replica.policy.from_db
        h = await headers(srv)
        version = (await put(srv, h, {"sources": read_only_sources()})).json()["version"]
        before = replica.policy.bundle
        watcher.poll()
        assert replica.policy.version == version and replica.policy.bundle is not before
        assert replica.policy.bundle is not None and "demo.loopback-read" in replica.policy.bundle.policy_ids

        # a replica started now loads the active version at start-up
        assert build_context(srv.settings).policy.version == version
    finally:
        replica.store.engine.dispose()  # type: ignore[attr-defined]


async def test_a_stored_version_that_no_longer_parses_keeps_the_current_bundle(srv: AS) -> None:
    h = await headers(srv)
    version = (await put(srv, h, {"sources": read_only_sources()})).json()["version"]
    bundle = srv.ctx.policy.bundle
    store: Any = srv.ctx.store
    store.add_policy_version(  # bypasses validation, as a Cedar upgrade might
        author="test", comment="", schema_text="garbage", sources={}, entities={}, sha256="0" * 64
    )
    assert srv.ctx.policy.reload(store) is False
    assert srv.ctx.policy.bundle is bundle and srv.ctx.policy.version == version


async def test_the_builtin_setting_ignores_stored_versions_and_refuses_writes(as_factory: ASFactory) -> None:
    srv = await as_factory()  # AUTHZ_POLICIES=builtin (the default)
    h = await headers(srv)
    r = await put(srv, h, {"sources": read_only_sources()})
    assert r.status_code == 409
    assert await granted(srv) == {"tools:read", "tools:write"}


async def test_auth(srv: AS) -> None:
    assert (await srv.http.get("/api/v1/policies/versions")).status_code == 401
    assert (await put(srv, {}, {"sources": read_only_sources()})).status_code == 401
    reader = await headers(srv, "admin:read", name="reader")
    assert (await put(srv, reader, {"sources": read_only_sources()})).status_code == 403
    assert (await srv.http.get("/api/v1/policies/versions", headers=reader)).status_code == 200
    writer = await headers(srv, "admin:write", name="writer")
    assert (await srv.http.get("/api/v1/policies/versions", headers=writer)).status_code == 403
    assert (await srv.http.get("/api/v1/policies/versions")).status_code == 401
