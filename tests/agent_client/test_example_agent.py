"""``examples/python/agent.py`` against a live ``authz demo``: token, tool calls, usage and outcome recorded.

The demo prints its agent's id and secret; an admin API client for metering is made with the CLI on
the demo's database; the example runs as a user would run it and must print the tool result, the
agent it was, and its usage with the events it recorded (read back from the server).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.procs import free_port
from tests.e2e._processes import Processes, base_env, parse_fields, processes, wait_until

__all__ = ["processes"]
pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BANNER = "authz demo is running"


@pytest.mark.timeout(300)  # one demo start on a loaded machine
def test_example_agent_against_the_demo(processes: Processes, tmp_path: Path) -> None:
    port, mcp_port = free_port(), free_port()
    argv = ["-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port)]
    demo = processes.start("authz-demo", argv, base_env(AUTHZ_DATA_DIR=str(tmp_path / "data")))
    wait_until(lambda: BANNER in demo.log(), "the demo banner", 120, demo)
    banner = demo.log()[demo.log().index(BANNER) :]
    issuer = re.search(r"Authorization server\s+(\S+)", banner)
    mcp = re.search(r"Demo MCP server\s+(\S+)", banner)
    secret = re.search(r"-u (agt_\w+):(\S+)", banner)
    data_dir = re.search(r"AUTHZ_DATA_DIR=(\S+) authz billing preview", banner)
    assert issuer and mcp and secret and data_dir, banner

    env = base_env(AUTHZ_DATA_DIR=data_dir[1])
    made = subprocess.run(
        [sys.executable, "-m", "authz", "admin-client", "create", "--name", "example",
         "--scopes", "metering:read metering:write"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    admin = parse_fields(made.stdout)
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "agent.py"), "--issuer", issuer[1], "--mcp", mcp[1],
         "--agent-id", secret[1], f"--agent-secret={secret[2]}", "--admin-id", admin["client_id"],
         f"--admin-secret={admin['client_secret']}"],  # "=": a secret may start with "-"
        env=base_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "add(2, 3) = 5" in run.stdout and f"agent={secret[1]}" in run.stdout, run.stdout
    report = json.loads(run.stdout.strip().splitlines()[-1])
    counts = {row["type"]: int(row["count"]) for row in report["usage"]}
    assert report["agent"] == secret[1]
    assert counts.get("tokens.consumed") == 1 and counts.get("outcome.answer_delivered") == 1, counts
