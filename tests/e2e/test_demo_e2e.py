"""``authz demo`` as a user runs it: wait for the banner, follow its steps, press Ctrl-C.

The banner's steps are ``curl`` lines; here each is done with httpx2 using exactly the URLs and
the secret the banner printed: (1) no token -> 401 naming the metadata and the scope, (2) an
agent token by client_credentials, (3) ``tools/call whoami`` with it -> 200. Then SIGINT to the
``authz demo`` process: it must stop both servers it started and exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e._processes import (
    MCP_HEADERS,
    Processes,
    base_env,
    child_pids,
    pid_alive,
    processes,  # noqa: F401  (fixture)
    sse_json,
    tools_call,
    wait_until,
)

pytestmark = pytest.mark.e2e

BANNER = "authz demo is running"
START_TIMEOUT = 90.0  # migrations + two servers, bounded
STOP_TIMEOUT = 30.0  # the demo gives each child 10 s after SIGINT


def test_demo_banner_steps_and_ctrl_c(processes: Processes, tmp_path: Path, free_port: Callable[[], int]) -> None:  # noqa: F811
    port, mcp_port = free_port(), free_port()
    demo = processes.start(
        "authz-demo",
        ["-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port)],
        base_env(AUTHZ_DATA_DIR=str(tmp_path / "data")),
    )
    wait_until(lambda: BANNER in demo.log(), "the demo banner", START_TIMEOUT, demo)
    banner = demo.log()[demo.log().index(BANNER) :]

    issuer = re.search(r"Authorization server\s+(\S+)", banner)
    resource = re.search(r"Demo MCP server\s+(\S+)", banner)
    secret = re.search(r"-u (agt_\w+):(\S+)", banner)
    assert issuer and resource and secret, banner
    assert issuer[1] == f"http://127.0.0.1:{port}"
    assert resource[1] == f"http://127.0.0.1:{mcp_port}/mcp"
    assert f"{issuer[1]}/token" in banner and f"resource={resource[1]}" in banner

    children = child_pids(demo.pid)
    commands = " | ".join(children.values())
    assert len(children) == 2 and "authz serve" in commands and "resource_server.demo" in commands, children

    with httpx2.Client(timeout=10) as http:
        # 1. No token: 401 with a challenge naming the metadata and the scope.
        r = http.post(resource[1], json=tools_call("whoami"), headers=MCP_HEADERS)
        assert r.status_code == 401, r.text
        challenge = r.headers["www-authenticate"]
        prm_url = re.search(r'resource_metadata="([^"]+)"', challenge)
        assert prm_url and re.search(r'scope="tools:read"', challenge), challenge
        prm = http.get(prm_url[1]).json()
        assert prm["resource"] == resource[1] and prm["authorization_servers"] == [issuer[1]], prm

        # 2. An agent token for this MCP server (client_credentials with the printed secret).
        t = http.post(
            f"{issuer[1]}/token",
            auth=(secret[1], secret[2]),
            data={"grant_type": "client_credentials", "resource": resource[1], "scope": "tools:read"},
        )
        assert t.status_code == 200, t.text
        token = t.json()["access_token"]

        # 3. Call a tool with it.
        r = http.post(
            resource[1], json=tools_call("whoami"), headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        message = sse_json(r)
        assert "error" not in message, message
        assert message["result"].get("isError") is not True, message
        who = json.loads(message["result"]["content"][0]["text"])
        assert who["client_id"] == secret[1] and who["agent"] == secret[1] and who["scopes"] == ["tools:read"], who
        assert f"authz budgets create --agent {secret[1]}" in banner

        # 4. The admin console: printed, signed in by development mode, already showing the warm-up call.
        console = re.search(r"Admin console\s+(\S+)", banner)
        assert console and console[1] == f"{issuer[1]}/console/", banner

        def issued_today() -> int:
            page = http.get(console[1], follow_redirects=True)
            assert page.status_code == 200 and 'class="role">admin<' in page.text, page.text[:500]
            issued = re.search(r'data-test="tokens-issued">(\d+)<', page.text)
            assert issued, page.text
            return int(issued[1])

        # The warm-up token and step 2's. Audit records are written in batches (every 0.2 s), so the
        # page counts step 2's token once its batch is in.
        wait_until(lambda: issued_today() >= 2, "the console to count two issued tokens", 10)
        budgets = http.get(console[1] + "budgets")
        assert budgets.status_code == 200 and secret[1] in budgets.text

    # 6. Money: the printed command shows the demo customer's invoice preview on the hybrid plan.
    billing = re.search(r"AUTHZ_DATA_DIR=(\S+) authz billing preview (\S+)", banner)
    assert billing, banner
    shown = subprocess.run(
        [sys.executable, "-m", "authz", "billing", "preview", billing[2]],
        env=base_env(AUTHZ_DATA_DIR=billing[1]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Platform" in shown.stdout and "199.00" in shown.stdout and "TOTAL" in shown.stdout, shown.stdout

    # Ctrl-C (SIGINT to the demo process): both servers stop and the demo exits.
    os.kill(demo.pid, signal.SIGINT)
    try:
        code = demo.popen.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"authz demo still running {STOP_TIMEOUT:.0f} s after SIGINT")
    assert code == 0, code
    wait_until(lambda: not any(pid_alive(p) for p in children), "the demo's servers to exit", STOP_TIMEOUT)
    for url in (f"{issuer[1]}/.well-known/oauth-authorization-server", prm_url[1]):
        with pytest.raises(httpx2.TransportError):
            httpx2.get(url, timeout=2)


def _start_demo(
    processes: Processes,  # noqa: F811
    data: Path,
    port: int,
    mcp_port: int,
    *extra: str,
    ignore_sigint: bool = False,
) -> Any:
    """``authz demo``; with ``ignore_sigint`` it starts as a background job of a non-interactive shell
    does (``authz demo &``): SIGINT ignored on entry."""
    argv = ["-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port), *extra]
    if ignore_sigint:
        argv = [
            "-c",
            "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            f"os.execv(sys.executable, [sys.executable, *{argv!r}])",
        ]
    return processes.start("authz-demo", argv, base_env(AUTHZ_DATA_DIR=str(data)))


@pytest.mark.timeout(300)  # one demo start on a loaded machine
@pytest.mark.parametrize(("sig", "background"), [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_the_demo_stops_both_servers_on_sigterm_and_on_sigint_in_the_background(
    processes: Processes,  # noqa: F811
    tmp_path: Path,
    free_port: Callable[[], int],
    sig: signal.Signals,
    background: bool,
) -> None:
    demo = _start_demo(processes, tmp_path / "data", free_port(), free_port(), ignore_sigint=background)
    wait_until(lambda: BANNER in demo.log(), "the demo banner", START_TIMEOUT, demo)
    children = child_pids(demo.pid)
    assert len(children) == 2, children
    os.kill(demo.pid, sig)
    try:
        code = demo.popen.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"authz demo still running {STOP_TIMEOUT:.0f} s after {sig.name}")
    assert code == 0, (code, demo.log())
    wait_until(lambda: not any(pid_alive(p) for p in children), "the demo's servers to exit", STOP_TIMEOUT)


@pytest.mark.timeout(300)  # one demo start on a loaded machine
def test_the_demo_names_a_taken_port_and_says_where_state_lives(
    processes: Processes,  # noqa: F811
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    port, mcp_port = free_port(), free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", mcp_port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "authz", "demo", "--port", str(port), "--mcp-port", str(mcp_port)],
            env=base_env(AUTHZ_DATA_DIR=str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"port {mcp_port} on 127.0.0.1 is taken" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing written

    state = (tmp_path / "data" / "demo").resolve()
    demo = _start_demo(processes, tmp_path / "data", port, mcp_port)
    wait_until(lambda: BANNER in demo.log(), "the demo banner", START_TIMEOUT, demo)
    banner = demo.log()
    authz = Path(sys.executable).parent / "authz"
    assert f"AUTHZ_DATA_DIR={state} {authz} budgets create" in banner
    assert f"kept in {state} between runs" in banner and "--reset" in banner
    assert (state / "issuer").read_text().strip() == f"http://127.0.0.1:{port}"  # CLI commands find this issuer


@pytest.mark.timeout(300)  # one demo start on a loaded machine
def test_the_demo_reset_starts_afresh(
    processes: Processes,  # noqa: F811
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    state = (tmp_path / "data" / "demo").resolve()
    state.mkdir(parents=True)
    (state / "marker").write_text("left from an earlier run")
    demo = _start_demo(processes, tmp_path / "data", free_port(), free_port(), "--reset")
    wait_until(lambda: BANNER in demo.log(), "the demo banner after --reset", START_TIMEOUT, demo)
    assert not (state / "marker").exists() and f"removed {state} (--reset)" in demo.log()
