"""``POST /api/v1/policies/test``: the policy tests against the active set or a draft, over HTTP."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

import policies
from policies.tools import example_texts
from tests.authz.conftest import AS, ASFactory
from tests.authz.policy.test_store import READ_ONLY_DEMO, embedded_sources, headers, put

pytestmark = pytest.mark.anyio

DEMO_WRITE = {
    "principal": 'Authz::Client::"cli_1"',
    "resource": 'Authz::Scope::"http://127.0.0.1:8000/mcp#tools:write"',
    "context": {
        "delegated": False, "user_groups": [], "act_depth": 0, "grant_type": "client_credentials",
        "client_id": "cli_1", "time": "2025-06-03T10:00:00Z", "hour": 10, "weekday": "tue",
    },
    "entities": [{"uid": {"type": "Authz::Client", "id": "cli_1"}, "attrs": {}, "parents": []}],
}  # fmt: skip


_names = itertools.count()


async def run(srv: AS, body: dict[str, object], scopes: str = "admin:read") -> tuple[int, Any]:
    h = await headers(srv, scopes, name=f"tester-{next(_names)}")
    r = await srv.http.post("/api/v1/policies/test", json=body, headers=h)
    return r.status_code, r.json()


async def test_the_shipped_tests_pass_on_the_embedded_set_with_located_deciding_policies(as_factory: ASFactory) -> None:
    srv = await as_factory(policies="db")
    status, report = await run(srv, {})
    assert status == 200, report
    shipped = example_texts(policies.DEFAULT_DIR)
    assert report["target"] == "active" and report["version"] is None and report["ok"] is True
    assert report["passed"] == len(shipped) and report["failed"] == 0
    results = report["results"]
    assert isinstance(results, list) and [r["name"] for r in results] == sorted(shipped)
    allowed = next(r for r in results if r["expected"] == "ALLOW")
    where = allowed["policies"][0]
    assert where["file"].endswith(".cedar") and where["line"] >= 1 and where["col"] >= 1


async def test_a_stored_version_and_a_draft_are_tested_and_failures_say_why(as_factory: ASFactory) -> None:
    srv = await as_factory(policies="db")
    h = await headers(srv, "admin:read admin:write")
    stored = (await put(srv, h, {"sources": embedded_sources()})).json()
    tests = {"ALLOW/demo_write.json": json.dumps(DEMO_WRITE), "DENY/demo_write.json": DEMO_WRITE}
    status, report = await run(srv, {"tests": tests})
    assert status == 200, report
    assert (report["target"], report["version"], report["sha256"]) == ("active", stored["version"], stored["sha256"])
    assert (report["passed"], report["failed"], report["ok"]) == (1, 1, False)
    deny = next(r for r in report["results"] if r["name"] == "DENY/demo_write.json")
    assert deny["actual"] == "ALLOW" and deny["failure"] == "expected DENY, got ALLOW" and not deny["passed"]

    draft = {**embedded_sources(), "servers/demo.cedar": READ_ONLY_DEMO}
    status, report = await run(srv, {"tests": tests, "sources": draft})
    assert status == 200, report
    assert report["target"] == "draft" and report["version"] is None and report["sha256"] != stored["sha256"]
    assert (report["passed"], report["failed"]) == (1, 1)
    assert [r["name"] for r in report["results"] if r["passed"]] == ["DENY/demo_write.json"]
    assert (await srv.http.get("/api/v1/policies", headers=h)).json()["version"] == stored["version"]  # nothing stored


async def test_bad_input_is_a_located_problem(as_factory: ASFactory) -> None:
    srv = await as_factory(policies="db")
    status, problem = await run(srv, {"sources": {"bad.cedar": "permit(principal, action, resource"}})
    assert status == 422 and problem["type"] == "urn:authz:problem:validation"
    assert problem["problems"][0]["file"] == "bad.cedar"
    assert problem["errors"][0]["field"] == "sources[bad.cedar]"

    status, problem = await run(srv, {"tests": {"ALLOW/a.json": '{\n  "principal": ', "MAYBE/b.json": "{}"}})
    assert status == 422
    located = {(p["file"], p["line"]) for p in problem["problems"]}
    assert located == {("tests/ALLOW/a.json", 2), ("tests/MAYBE/b.json", 1)}
    assert {e["pointer"] for e in problem["errors"]} == {"#/tests/ALLOW~1a.json", "#/tests/MAYBE~1b.json"}

    status, problem = await run(
        srv, {"tests": {"ALLOW/p.json": {"principal": 1}, "DENY/r.json": {"principal": 'A::"a"', "resource": "x"}}}
    )
    assert status == 422
    assert [(p["file"], p["message"]) for p in problem["problems"]] == [
        (
            "tests/ALLOW/p.json",
            'principal: an entity reference is a string Type::"id" or an object {"type", "id"}; '
            'resource: missing (an entity reference such as Authz::Agent::"agt_1")',
        ),
        ("tests/DENY/r.json", "resource: 'x' is not Type::\"id\""),
    ]

    status, problem = await run(srv, {"schema": "entity A;"})
    assert status == 422 and problem["errors"][0]["field"] == "sources"
    status, problem = await run(srv, {"tests": {}})
    assert status == 422
    status, problem = await run(srv, {"tests": {"ALLOW/x.json": "{}"}}, scopes="metering:read")
    assert status == 403


async def test_an_unevaluable_test_is_an_error_result_and_policies_off_needs_a_draft(as_factory: ASFactory) -> None:
    srv = await as_factory(policies="off")
    status, problem = await run(srv, {})
    assert status == 409, problem
    odd = {"principal": 'Authz::Agent::"a"', "resource": 'Authz::Scope::"https://x.example/mcp#r"', "entities": 5}
    status, report = await run(srv, {"sources": embedded_sources(), "tests": {"ALLOW/odd.json": odd}})
    assert status == 200, report
    (only,) = report["results"]
    assert only["actual"] == "ERROR" and only["failure"].startswith("cannot evaluate")
