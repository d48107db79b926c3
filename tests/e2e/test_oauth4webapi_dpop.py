"""A strict third-party DPoP client (panva's ``oauth4webapi`` on Node 22) against ``authz demo``.

The library completes client_credentials and authorization code + PKCE with DPoP (RFC 9449) against
the demo's authorization server, and the demo MCP server accepts each DPoP-bound token for a
``tools/call`` (and refuses it presented as a bearer token). The package is installed once under
``tests/e2e/node/.npm/`` (git-ignored) with the npm of Node 22.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e._processes import Processes, base_env, processes, wait_until  # noqa: F401

pytestmark = [pytest.mark.e2e]

HERE = Path(__file__).resolve().parent / "node"
NPM_DIR = HERE / ".npm"
PACKAGE = "oauth4webapi@3.8.8"
BANNER = "authz demo is running"


def install(node: str) -> Path:
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    (NPM_DIR / ".gitignore").write_text("*\n")
    module = NPM_DIR / "node_modules" / "oauth4webapi" / "package.json"
    with open(NPM_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not module.exists():
            npm = shutil.which("npm")
            assert npm is not None, "npm is needed once to install oauth4webapi"
            env = {**os.environ, "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            done = subprocess.run(
                [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "--loglevel=error", PACKAGE],
                env=env, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert done.returncode == 0 and module.exists(), done.stderr
    return NPM_DIR / "node_modules"


@pytest.mark.requirement("rfc9449:token-type-dpop")
@pytest.mark.timeout(300)
def test_oauth4webapi_gets_dpop_tokens_the_demo_mcp_server_accepts(
    processes: Processes,  # noqa: F811
    node22: str,
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    modules = install(node22)
    port, mcp_port = free_port(), free_port()
    demo = processes.start(
        "authz-demo",
        ["-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port)],
        base_env(AUTHZ_DATA_DIR=str(tmp_path / "data"), AUTHZ_DYNAMIC_REGISTRATION="true"),
    )
    wait_until(lambda: BANNER in demo.log(), "the demo banner", 90.0, demo)
    banner = demo.log()[demo.log().index(BANNER) :]
    secret = re.search(r"-u (agt_\w+):(\S+)", banner)
    assert secret, banner
    issuer, mcp = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mcp_port}/mcp"
    script = tmp_path / "oauth4webapi_dpop.mjs"
    shutil.copy(HERE / "oauth4webapi_dpop.mjs", script)
    (tmp_path / "node_modules").symlink_to(modules)
    done = subprocess.run(
        [node22, str(script), issuer, mcp, secret[1], secret[2]],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + demo.log()[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "ES256" in found["dpop_algs"]
    cc = found["client_credentials"]
    assert cc["token_type"] == "dpop" and cc["mcp"] == {"status": 200, "ok": True}, cc
    assert cc["as_bearer_status"] == 401, cc
    code = found["authorization_code"]
    assert code["token_type"] == "dpop" and code["refresh"] and code["mcp"] == {"status": 200, "ok": True}, code
    assert code["refreshed_token_type"] == "dpop", code
