"""The README's "Protect an MCP server" section, run as written: the Python snippet serves a real MCP
server, the AS commands register it and write its starter policy, the AS restarts with that policy
set, and the agent's ``curl`` lines get a token and call a tool. Only the two example URLs are swapped
for loopback ones (and ``AGENT_ID`` for the id ``agents create`` printed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e._processes import Processes, base_env, processes, wait_http  # noqa: F401  (fixture)

README = (Path(__file__).parents[2] / "README.md").read_text()


def _section() -> str:
    return README.split("## Protect an MCP server", 1)[1].split("\n## ", 1)[0]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", _section(), re.S)


def _bash(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{line}"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_protect_an_mcp_server_section_works_as_written(
    authz_server_factory: Any,
    free_port: Any,
    processes: Processes,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = authz_server_factory(dev=False, start=False)
    mcp_port = free_port()
    resource = f"http://127.0.0.1:{mcp_port}/mcp"

    def local(text: str) -> str:
        return text.replace("https://notes.example.com/mcp", resource).replace(
            "https://auth.example.com", server.issuer
        )

    python_block, as_block, agent_block = (*_blocks("python"), *_blocks("bash"))

    # the AS commands, one line at a time, with the venv's `authz` first on PATH
    env = {**server.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    agent_id = secret = ""
    for raw in local(as_block).splitlines():
        line = raw.split("  #", 1)[0].strip()
        if not line:
            continue
        line = line.replace("AGENT_ID", agent_id)
        if line.startswith("export "):
            name, value = line[len("export ") :].split("=", 1)
            done = _bash(f'printf %s "{value}"', env, server.data_dir)
            env[name] = done.stdout
            continue
        done = _bash(line, env, server.data_dir)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if match := re.search(r"^id:\s+(agt_\w+)", done.stdout, re.M):
            agent_id = match.group(1)
        if match := re.search(r"^client_secret:\s+(\S+)", done.stdout, re.M):
            secret = match.group(1)
    assert agent_id and secret, "the README's commands did not create an agent with a secret"
    policy_dir = Path(env["AUTHZ_POLICIES"])
    assert (policy_dir / "servers" / f"server-{mcp_port}.cedar").exists()  # the starter policy

    # the AS (re)started with the policy set the section exported; its startup line names it
    server._extra_env["AUTHZ_POLICIES"] = env["AUTHZ_POLICIES"]
    server.env = server._make_env()
    server.start()
    assert f"policies: directory {policy_dir}" in server.log()

    # the MCP server: the README's snippet, served
    script = tmp_path / "notes_server.py"
    script.write_text(
        local(python_block)
        + f'\nimport uvicorn\nuvicorn.run(app, host="127.0.0.1", port={mcp_port}, log_level="warning")\n'
    )
    notes = processes.start("notes", [str(script)], base_env())
    wait_http(f"http://127.0.0.1:{mcp_port}/.well-known/oauth-protected-resource/mcp", notes)

    # the agent's lines: a token, then a tool call with it
    done = _bash(local(agent_block), {**env, "AGENT_ID": agent_id, "AGENT_SECRET": secret}, tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{server.log()}"
    answer = json.loads(done.stdout)
    assert answer["id"] == 1 and "error" not in answer and answer["result"]["isError"] is False, answer
