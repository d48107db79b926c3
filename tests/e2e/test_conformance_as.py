"""The official MCP conformance suite, ``authorization`` mode, against a real ``authz serve --dev``.

Runs ``conformance/run_as_suite.py`` (which installs the pinned suite under ``conformance/.npm/``)
and asserts on the checks it parsed from the suite's ``checks.json`` files, not on its prose.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.procs import REPO_ROOT, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

EXPECTED = {
    "authorization-server-metadata-endpoint": {
        "authorization-server-metadata": "SUCCESS",
        "authorization-server-metadata-cimd": "SUCCESS",
    },
    "authorization-code-grant": {"authorization-code-grant": "SUCCESS"},
}


@pytest.mark.timeout(420)
@pytest.mark.requirement("mcp:as-metadata")
@pytest.mark.requirement("mcp:as-metadata-pkce")
@pytest.mark.requirement("mcp:as-cimd-advertised")
@pytest.mark.requirement("mcp:as-code-grant")
@pytest.mark.requirement("mcp:iss-advertised")
@pytest.mark.requirement("rfc6749:token-no-store")
def test_official_suite_authorization_mode_passes_without_warnings(node22: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "conformance.run_as_suite", "-o", str(results), "--node", node22, "--timeout", "150"],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    print(done.stdout, done.stderr, sep="\n")  # shown when the test fails
    assert done.returncode != 2, f"the runner could not run the suite:\n{done.stderr}"
    summary: dict[str, Any] = json.loads((results / "summary.json").read_text())

    statuses = {
        scenario: {check["id"]: check["status"] for check in checks}
        for scenario, checks in summary["scenarios"].items()
    }
    assert statuses == EXPECTED
    assert summary["problems"] == []
    assert summary["suite_exit_code"] == 0
    assert summary["ok"] is True
    assert done.returncode == 0
