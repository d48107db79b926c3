"""Helpers for the SDK, browser and demo end-to-end tests, beside the shared ``conftest.py``.

``authz serve`` itself comes from the shared ``authz_server_factory`` fixture; this module adds
what it lacks: other processes (the demo MCP server, ``authz demo``), CLI helpers that parse the
printed credentials, ``users add --password-stdin`` (the shared ``cli()`` passes no stdin), and
small JSON-RPC/JWT helpers. Every process is started with ``sys.executable -m ...`` in its own session, its stdout and
stderr go to a log file under the test's tmp dir, and the :func:`processes` fixture stops all of
them at teardown (SIGTERM to the process group, then SIGKILL after a bounded wait) and prints
their logs — pytest shows that output only when the test failed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conformance.procs import AuthzServer, clean_env

START_TIMEOUT = 60.0  # bounded wait for a process to answer (first start runs migrations)
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def base_env(**extra: str) -> dict[str, str]:
    """The environment without inherited AUTHZ_* server settings (or RS credentials), plus ``extra``."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("RS_CLIENT_")}
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it has not exited within STOP_TIMEOUT."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=STOP_TIMEOUT)
        # Children of a process that exited on its own may still hold the group: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class Processes:
    """The processes of one test; logs are written under ``log_dir``."""

    log_dir: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    def dump_logs(self) -> str:
        parts = []
        for proc in self.started:
            status = "running" if proc.alive() else f"exit {proc.popen.returncode}"
            parts.append(f"----- {proc.name} (pid {proc.pid}, {status}) {proc.log_path} -----\n{proc.log()}")
        return "\n".join(parts)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start processes through this; all are stopped at teardown and their logs printed (shown on failure)."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Processes(log_dir)
    try:
        yield procs
    finally:
        procs.stop_all()
        print(procs.dump_logs())


def wait_until(check: Callable[[], bool], what: str, timeout: float, proc: Proc | None = None) -> None:
    """Poll ``check`` every 0.1 s until it is true; fail after ``timeout`` s or when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited with status {proc.popen.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def wait_http(url: str, proc: Proc, timeout: float = START_TIMEOUT) -> None:
    """Wait until ``url`` answers a GET with a status below 500."""

    def answers() -> bool:
        try:
            return httpx2.get(url, timeout=2).status_code < 500
        except httpx2.HTTPError:
            return False

    wait_until(answers, url, timeout, proc)


def parse_fields(output: str) -> dict[str, str]:
    """``key:   value   (comment)`` lines printed by the CLI -> {key: value}."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key and " " not in key.strip() and rest.strip():
            out[key.strip()] = rest.split()[0]
    return out


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, payload) of a compact JWS, decoded without verification (for assertions only)."""

    def seg(s: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        return value

    header, payload, _sig = token.split(".")
    return seg(header), seg(payload)


def add_resource(server: AuthzServer, uri: str, scopes: str, name: str = "") -> tuple[str, str]:
    """``authz resources add``: returns the printed (client_id, client_secret) for introspection."""
    out = server.cli("resources", "add", uri, "--scopes", scopes, *(["--name", name] if name else []))
    fields = parse_fields(out.stdout)
    return fields["client_id"], fields["client_secret"]


def add_client(server: AuthzServer, *args: str) -> tuple[str, str | None]:
    """``authz clients add ARGS``: returns the printed (client_id, client_secret or None)."""
    fields = parse_fields(server.cli("clients", "add", *args).stdout)
    return fields["client_id"], fields.get("client_secret")


def add_user(server: AuthzServer, username: str, password: str) -> str:
    """``authz users add USERNAME --password-stdin`` (the shared ``cli()`` has no stdin); returns the user id."""
    done = subprocess.run(
        [sys.executable, "-m", "authz", "users", "add", username, "--password-stdin"],
        env=server.env,
        cwd=server.data_dir,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode == 0, f"authz users add -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return user_id(server, username)


def user_id(server: AuthzServer, username: str) -> str:
    """The id ``authz users list`` prints for ``username``."""
    for line in server.cli("users", "list").stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == username:
            return parts[1]
    raise AssertionError(f"no user {username!r} in `authz users list`")


def start_demo_mcp(
    processes: Processes, issuer: str, port: int, *, mode: str = "hybrid", client_id: str = "", client_secret: str = ""
) -> tuple[str, Proc]:
    """``python -m resource_server.demo`` on ``port``; returns (its MCP URL, process)."""
    env = base_env(RS_CLIENT_SECRET=client_secret) if client_secret else base_env()
    args = ["-m", "resource_server.demo", "--port", str(port), "--issuer", issuer, "--mode", mode]
    if client_id:
        args += ["--client-id", client_id]
    proc = processes.start("demo-mcp", args, env)
    wait_http(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp", proc)
    return f"http://127.0.0.1:{port}/mcp", proc


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def tools_call(name: str, arguments: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}},
    }


def sse_json(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a Streamable HTTP response (JSON body or the first SSE ``data:`` line)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body: dict[str, Any] = response.json()
        return body
    for line in response.text.splitlines():
        if line.startswith("data:"):
            data: dict[str, Any] = json.loads(line[5:])
            return data
    raise AssertionError(f"no JSON-RPC message in response: {response.text[:500]}")


def child_pids(pid: int) -> dict[int, str]:
    """The live children of ``pid`` (Linux ``/proc``): {pid: command line}."""
    children: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            children[int(entry.name)] = cmdline
    return children


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"
