"""Every shipped ALLOW/DENY example holds (parametrized from the directory, so new files run in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import policies
from policies.tools import example_files, run_example

EXAMPLES = example_files(policies.DEFAULT_DIR)


def test_enough_examples() -> None:
    kinds = [e for _, e in EXAMPLES]
    assert kinds.count("ALLOW") >= 6
    assert kinds.count("DENY") >= 6


@pytest.mark.parametrize(("path", "expected"), EXAMPLES, ids=[f"{e}/{p.stem}" for p, e in EXAMPLES])
def test_example(bundle: policies.PolicyBundle, path: Path, expected: str) -> None:
    result = run_example(bundle, path, expected)
    assert result.passed, result.failure


def test_example_runner_reports_a_wrong_expectation(bundle: policies.PolicyBundle, tmp_path: Path) -> None:
    allow = next(p for p, e in EXAMPLES if e == "ALLOW")
    wrong = tmp_path / allow.name
    wrong.write_text(allow.read_text())
    result = run_example(bundle, wrong, "DENY")
    assert not result.passed
    assert result.failure == "expected DENY, got ALLOW"


def test_cli_locates_a_bad_test_file(policy_dir: Path) -> None:
    """``authz policy test`` parses the files as ``POST /policies/test`` does: a broken one is one
    ``file:line:col`` line and exit 1, not a traceback or a "cannot evaluate" result."""
    (policy_dir / "tests" / "ALLOW" / "broken.json").write_text('{\n  "principal": "Agent::\\"a\\"",\n  oops\n}\n')
    (policy_dir / "tests" / "DENY" / "list.json").write_text("[1, 2]\n")
    run = subprocess.run(
        [sys.executable, "-m", "authz", "policy", "test", str(policy_dir)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr and "cannot evaluate" not in run.stdout
    assert run.stderr.splitlines() == [
        f"{policy_dir}/tests/ALLOW/broken.json:3:3: invalid JSON: Expecting property name enclosed in double quotes",
        f"{policy_dir}/tests/DENY/list.json:1:1: a test is a JSON object (principal, resource, context...)",
    ]
