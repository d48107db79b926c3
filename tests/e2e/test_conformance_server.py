"""The official MCP conformance suite, ``server`` mode, against the demo MCP server behind our middleware.

Runs ``conformance/run_server_suite.py``: a real ``authz serve --dev``, the demo MCP server
(``python -m resource_server.demo --mode hybrid --conformance-fixtures``) protected by the
resource-server middleware, and a token-injecting reverse proxy in front of it (the suite cannot
send a token). The suite's own baseline check (``conformance/expected-failures-server.yml``) must
pass for every spec version: no new failure, no stale entry. On top of that, the scenarios that
exercise plain Streamable HTTP through the middleware (initialize, sessions, ping, tools, resources,
prompts, SSE streams, DNS-rebinding protection) must be in the passing set.
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

COMMON = {
    "dns-rebinding-protection",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-list",
    "resources-list",
    "resources-read-binary",
    "resources-read-text",
    "resources-templates-read",
    "server-sse-multiple-streams",
    "tools-call-error",
    "tools-call-simple-text",
    "tools-list",
}
MUST_PASS = {
    "2025-11-25": COMMON | {"server-initialize", "server-session-lifecycle", "ping"},
    "2026-07-28": COMMON | {"http-header-validation", "caching", "sep-2164-resource-not-found"},
}
# server-stateless runs with a few fixture-only entries in the baseline: its transport checks must pass.
STATELESS_MUST_PASS = {
    "sep-2575-http-server-meta-invalid-400",
    "sep-2575-server-implements-discover",
    "sep-2575-http-server-header-mismatch-400",
    "sep-2575-http-server-method-not-found-404",
    "sep-2575-http-server-error-jsonrpc-id",
}


@pytest.mark.timeout(600)
def test_official_suite_server_mode_through_the_middleware(node22: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "conformance.run_server_suite", "-o", str(results), "--node", node22],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    print(done.stdout, done.stderr, sep="\n")  # shown when the test fails
    assert done.returncode != 2, f"the runner could not run the suite:\n{done.stderr}"
    summary: dict[str, Any] = json.loads((results / "summary.json").read_text())

    assert set(summary["versions"]) == set(MUST_PASS)
    for version, result in summary["versions"].items():
        assert result["problems"] == [], (version, result["problems"])
        assert result["suite_exit_code"] == 0, version  # baseline: nothing new failed, nothing stale
        missing = MUST_PASS[version] - set(result["passed"])
        assert not missing, f"{version}: expected to pass but did not: {sorted(missing)}"
        assert result["proxied_requests"] > 0
    stateless = summary["versions"]["2026-07-28"]["checks"]["server-stateless"]
    assert {c for c in STATELESS_MUST_PASS if stateless.get(c) != "SUCCESS"} == set(), stateless
    assert summary["ok"] is True
    assert done.returncode == 0
