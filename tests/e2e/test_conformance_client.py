"""The official MCP conformance suite, client mode: ``agent_client`` in the client-credentials and DPoP scenarios.

Runs ``conformance/run_client_suite.py`` (the pinned suite under ``conformance/.npm/``, Node 22):
the suite's mock MCP server and authorization server grade ``python -m agent_client.conformance``
with ``private_key_jwt`` (ES256) and ``client_secret_basic``, and in SEP-1932's ``auth/dpop`` and
``auth/dpop-nonce`` (a DPoP-bound token from an authorization-code flow, a fresh proof per MCP request,
the AS's and the server's nonces honoured). Asserts on the parsed checks.
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
    "auth/client-credentials-jwt": "client-credentials-jwt-verified",
    "auth/client-credentials-basic": "valid-bearer-token",
    "auth/dpop": "sep-1932-client-fresh-proof",
    "auth/dpop-nonce": "sep-1932-client-rs-nonce",
}


@pytest.mark.requirement("rfc9449:client-proofs")
@pytest.mark.timeout(540)
def test_agent_client_passes_the_client_credentials_scenarios(node22: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "conformance.run_client_suite", "-o", str(results), "--node", node22],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=520,
        check=False,
    )
    print(done.stdout, done.stderr, sep="\n")  # shown when the test fails
    assert done.returncode != 2, f"the runner could not run the suite:\n{done.stderr}"
    summary: dict[str, Any] = json.loads((results / "summary.json").read_text())
    assert summary["problems"] == []
    for scenario, must_pass in EXPECTED.items():
        checks = summary["scenarios"][scenario]
        statuses = {c["id"]: c["status"] for c in checks}
        assert statuses.get(must_pass) == "SUCCESS", statuses
        assert all(c["status"] in ("SUCCESS", "INFO") for c in checks), checks
        assert summary["exit_codes"][scenario] == 0
    assert done.returncode == 0
