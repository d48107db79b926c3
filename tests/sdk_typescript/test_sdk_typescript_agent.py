"""The TypeScript SDK's agent side against ``authz demo``: the official MCP TypeScript SDK client with
``AgentAuthProvider`` calls the demo MCP server (``sdk/typescript/test/mcp.test.ts``), and the example
agent (``sdk/typescript/examples/agent.ts``) gets a token, calls a tool, records token usage and an
outcome, and prints its usage.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from conformance.procs import free_port
from tests.e2e._processes import Processes, base_env, parse_fields, processes, wait_until  # noqa: F401
from tests.sdk_typescript._node import SDK, build, node22, node_env, node_test

BANNER = "authz demo is running"


@pytest.mark.timeout(900)
def test_mcp_client_with_the_provider_and_the_example_agent(processes: Processes, tmp_path: Path) -> None:  # noqa: F811
    node = node22()
    build(node)
    port, mcp_port = free_port(), free_port()
    env = base_env(AUTHZ_DATA_DIR=str(tmp_path / "data"), AUTHZ_CACHE_STALENESS="0.1")
    demo = processes.start("authz-demo", ["-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port)], env)
    wait_until(lambda: BANNER in demo.log(), "the demo banner", 90.0, demo)
    banner = demo.log()[demo.log().index(BANNER) :]
    secret = re.search(r"-u (agt_\w+):(\S+)", banner)
    assert secret, banner
    issuer, mcp = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mcp_port}/mcp"
    agent_env = {"AUTHZ_URL": issuer, "MCP_URL": mcp, "AGENT_ID": secret[1], "AGENT_SECRET": secret[2]}

    done = node_test(node, ["build/test/mcp.test.js"], agent_env)
    assert done.returncode == 0, done.stdout + done.stderr + "\n--- demo log ---\n" + demo.log()[-4000:]
    assert re.search(r"^# fail 0$", done.stdout, re.MULTILINE), done.stdout

    created = subprocess.run(
        [sys.executable, "-m", "authz", "admin-client", "create", "--name", "ts-example",
         "--scopes", "metering:read metering:write"],
        env={**env, "AUTHZ_DATA_DIR": str(tmp_path / "data" / "demo"), "AUTHZ_ISSUER": issuer},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    admin = parse_fields(created.stdout)

    answers: list[str] = []

    def admin_token_works() -> bool:  # the running server sees the new client within AUTHZ_CACHE_STALENESS
        data = {"grant_type": "client_credentials", "resource": f"{issuer}/api/v1", "scope": "metering:read"}
        r = httpx2.post(f"{issuer}/token", data=data, auth=(admin["client_id"], admin["client_secret"]), timeout=10)
        answers.append(f"{r.status_code} {r.text}")
        return r.status_code == 200

    try:
        wait_until(admin_token_works, "the new admin client", 30.0, demo)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {answers[-1:]} {created.stdout}") from None
    example_env = {
        **agent_env,
        "AUTHZ_ADMIN_CLIENT_ID": admin["client_id"],
        "AUTHZ_ADMIN_CLIENT_SECRET": admin["client_secret"],
    }
    ran = subprocess.run(
        [node, "build/examples/agent.js"], cwd=SDK, env=node_env(node, **example_env),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr + "\n--- demo log ---\n" + demo.log()[-4000:]
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert "whoami" in out["tools"] and out["whoami"]["agent"] == secret[1], out
    kinds = {row.get("type") for row in out["usage"]}
    assert {"tokens.consumed", "outcome.question_answered"} <= kinds, out
