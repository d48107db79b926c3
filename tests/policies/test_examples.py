"""Every shipped ALLOW/DENY example holds (parametrized from the directory, so new files run in CI)."""

from __future__ import annotations

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
