"""Real processes on loopback, shared by the conformance runners and the e2e fixtures.

``AuthzServer`` runs ``python -m authz serve`` (the interpreter running this code, so the venv is
used) on a free loopback port with its own data directory and SQLite file, and runs ``authz`` CLI
commands against the same settings. ``tests/e2e/conftest.py`` wraps it in pytest fixtures;
``conformance/run_as_suite.py`` uses it directly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx2

REPO_ROOT = Path(__file__).resolve().parent.parent
METADATA_PATH = "/.well-known/oauth-authorization-server"

# Environment variables about the *test run*, not settings of the server: kept in the child's env.
_TEST_ENV_KEEP = ("AUTHZ_TEST_", "AUTHZ_REQUIRE_SERVICES", "AUTHZ_NODE", "AUTHZ_CHROMIUM")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without inherited ``AUTHZ_*`` server settings, plus ``extra``.

    A developer's shell (or CI) may export AUTHZ_ISSUER, AUTHZ_CONFIG, AUTHZ_REDIS_URL...: a test server
    must not pick them up by accident. Test-policy variables (AUTHZ_TEST_*, AUTHZ_REQUIRE_SERVICES,
    AUTHZ_NODE, AUTHZ_CHROMIUM) are kept.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_") or k.startswith(_TEST_ENV_KEEP)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def kill_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Stop ``proc`` and everything it started (it must run in its own session): TERM, then KILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:  # children may outlive a leader that exited on TERM
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=grace)


class CliError(subprocess.CalledProcessError):
    """A failed ``authz`` command; its message includes the command's output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


class AuthzServer:
    """One ``authz serve`` process on loopback, with its own data dir and SQLite database.

    Attributes: ``issuer`` (``http://127.0.0.1:<port>``), ``port``, ``data_dir``, ``env`` (the full
    environment the server and ``cli()`` run with), ``log_path``. ``cli()`` works before ``start()``
    (run ``cli("migrate")`` first to register clients before the server starts).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        dev: bool = True,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        serve_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.dev = dev
        self._fixed_port = port
        self.port = port or free_port()
        self.serve_args = list(serve_args)
        self._extra_env = dict(env or {})
        self.log_path = self.data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.env = self._make_env()

    def _make_env(self) -> dict[str, str]:
        base = {
            "AUTHZ_ISSUER": f"http://127.0.0.1:{self.port}",
            "AUTHZ_DATA_DIR": str(self.data_dir),
            "AUTHZ_DATABASE_URL": f"sqlite:///{self.data_dir / 'authz.db'}",
            "AUTHZ_DEV_MODE": "1" if self.dev else "0",
        }
        base.update(self._extra_env)
        return clean_env(base)

    @property
    def issuer(self) -> str:
        return self.env["AUTHZ_ISSUER"]

    @property
    def url(self) -> str:
        """Where the server listens (the issuer, unless ``env`` overrode AUTHZ_ISSUER)."""
        return f"http://127.0.0.1:{self.port}"

    # -- CLI ----------------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``authz *args`` with this server's settings; raises :class:`CliError` on failure if ``check``."""
        cmd = [sys.executable, "-m", "authz", *args]
        done = subprocess.run(
            cmd, env=self.env, cwd=self.data_dir, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise CliError(done.returncode, cmd, done.stdout, done.stderr)
        return done

    # -- the server ---------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> AuthzServer:
        """Start ``authz serve`` and wait until its metadata answers 200; retries on a lost port race."""
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready(timeout)
                return self
            except _PortTaken:
                if self._fixed_port or attempt == 2:
                    raise RuntimeError(f"port {self.port} is taken\n{self.log()}") from None
                self.port = free_port()
                self.env = self._make_env()
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "authz", "serve", "--port", str(self.port), *self.serve_args]
        if self.dev:
            cmd.append("--dev")
        log: IO[bytes]
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx2.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    text = self.log()[self._log_offset :]
                    if "address already in use" in text.lower():
                        raise _PortTaken()
                    raise RuntimeError(f"authz serve exited with {self.proc.returncode} before answering\n{text}")
                try:
                    if client.get(self.url + METADATA_PATH).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"authz serve did not answer {METADATA_PATH} within {timeout:.0f}s\n{self.log()}")

    def stop(self) -> None:
        """Stop the server (and anything it started); safe to call twice."""
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def log(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> AuthzServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortTaken(Exception):
    pass
