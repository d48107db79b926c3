"""``POST /policies/test``: run ALLOW/DENY example requests against the active policy set or a draft.

The same runner as ``authz policy test``: each test is one example request (``principal``,
``resource``, ``context``, optional ``entities`` and ``expect_policies``) named ``ALLOW/<name>`` or
``DENY/<name>`` by the decision it expects. Without ``sources`` the tests run against the set the
server decides with right now (a stored version with ``AUTHZ_POLICIES=db``, a directory, or the
embedded set); with ``sources`` (and optionally ``schema`` and ``entities``, as ``PUT /policies``
takes them) against that draft, which is validated first and never stored. Without ``tests`` the
example requests shipped with the server's policy directory run (the embedded set's ``tests/``, or
``<AUTHZ_POLICIES>/tests`` for a directory).

Nothing changes, so ``admin:read`` suffices. An invalid draft or test is a 422 problem naming each
problem's file, line and column (``problems``) and field (``errors``); a test that Cedar cannot
evaluate is an ``ERROR`` result, not a problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import policies
from authz.admin.api import Call, Operation
from authz.admin.policies import MAX_POLICY_BODY, PolicyProblem, schema_and_entities
from authz.admin.problems import ApiProblem
from authz.policy.engine import DB_SETTING, content_sha256
from policies import PolicyBundle, PolicyError
from policies.loader import SCHEMA_FILE
from policies.tools import ExampleResult, example_texts, parse_examples, run_example_doc

_NOT_A_DIRECTORY = frozenset({"builtin", "off", DB_SETTING})


class PolicyTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tests: dict[str, str | dict[str, Any]] | None = Field(
        None,
        min_length=1,
        description='Example requests, `{"ALLOW/<name>" or "DENY/<name>": JSON text or object}`; '
        "default: the tests shipped with the server's policy directory.",
    )
    sources: dict[str, str] | None = Field(
        None, min_length=1, description="A draft's policy files, `{name: Cedar text}`; default: the active set."
    )
    schema_: str | None = Field(
        None, alias="schema", description="The draft's Cedar schema text; default: the embedded set's schema."
    )
    entities: str | dict[str, str] | None = Field(
        None, description="The draft's entity files (a string is one `entities.json`); default: the embedded set's."
    )


class PolicyLocation(BaseModel):
    id: str = Field(description="The policy's @id.")
    file: str
    line: int
    col: int


class PolicyTestResult(BaseModel):
    name: str = Field(description='The test\'s name, "ALLOW/<name>" or "DENY/<name>".')
    expected: Literal["ALLOW", "DENY"]
    actual: Literal["ALLOW", "DENY", "ERROR"] = Field(description="ERROR: Cedar could not evaluate the request.")
    passed: bool
    policies: list[PolicyLocation] = Field(description="The deciding policies and where each is written.")
    errors: list[str] = Field(description="Evaluation errors (a policy that errors does not apply).")
    failure: str | None = Field(description="Why the test failed; null when it passed.")


class PolicyTestReport(BaseModel):
    target: Literal["active", "draft"] = Field(description="What was tested: the active set or the submitted draft.")
    version: int | None = Field(description="The stored policy version tested (null: a draft, a directory, builtin).")
    sha256: str = Field(description="SHA-256 of the tested set's content (as `PolicyVersionDetail.sha256`).")
    passed: int
    failed: int
    ok: bool = Field(description="At least one test ran and none failed.")
    results: list[PolicyTestResult] = Field(description="One per test, in name order.")


def _draft(body: PolicyTestIn, sources: dict[str, str]) -> PolicyBundle:
    schema_text, entities = schema_and_entities(body.schema_, body.entities)
    try:
        return policies.build(schema_text, sources, entities, check_format=False)
    except PolicyError as exc:
        raise PolicyProblem(exc.problems, SCHEMA_FILE, sources) from exc


def _default_tests(setting: str) -> dict[str, str]:
    directory = policies.DEFAULT_DIR if setting in _NOT_A_DIRECTORY else Path(setting)
    return example_texts(directory)


def _result(bundle: PolicyBundle, r: ExampleResult) -> PolicyTestResult:
    where = [
        PolicyLocation(id=pid, file=o.file, line=o.line, col=o.col)
        for pid in r.policies
        if (o := bundle.origins.get(pid)) is not None
    ]
    return PolicyTestResult(
        name=r.file, expected=r.expected, actual=r.actual, passed=r.passed,
        policies=where, errors=list(r.errors), failure=r.failure,
    )  # fmt: skip


def test_policies(call: Call) -> tuple[int, PolicyTestReport]:
    body: PolicyTestIn = call.body
    engine = call.ctx.policy
    if body.sources is not None:
        bundle, target, version = _draft(body, body.sources), "draft", None
    elif body.schema_ is not None or body.entities is not None:
        raise ApiProblem(422, "A draft needs its sources.", errors=[("sources", "required with schema or entities")])
    elif engine.bundle is None:
        raise ApiProblem(409, "Policies are off (AUTHZ_POLICIES=off): submit a draft set in `sources` to test one.")
    else:
        bundle, target, version = engine.bundle, "active", engine.version
    try:
        cases = parse_examples(body.tests if body.tests is not None else _default_tests(call.ctx.settings.policies))
    except PolicyError as exc:
        raise PolicyProblem(exc.problems, SCHEMA_FILE, bundle.sources) from exc
    results = [_result(bundle, run_example_doc(bundle, name, expected, doc)) for name, expected, doc in cases]
    failed = sum(not r.passed for r in results)
    return 200, PolicyTestReport(
        target=target,
        version=version,
        sha256=content_sha256(bundle.schema_text, bundle.sources, bundle.entities_json),
        passed=len(results) - failed,
        failed=failed,
        ok=bool(results) and not failed,
        results=results,
    )


OPERATIONS = [
    Operation("POST", "/policies/test", test_policies, "admin:read", "Run policy tests (the active set or a draft)",
              PolicyTestReport, 200, PolicyTestIn, errors=(409,), max_body=MAX_POLICY_BODY),
]  # fmt: skip
