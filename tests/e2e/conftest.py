"""Shared end-to-end fixtures: real processes on loopback. Names below are stable; other e2e tests rely on them.

Every test under ``tests/e2e/`` gets the ``e2e`` mark automatically.

Fixtures
--------
``free_port``
    A callable ``free_port() -> int``: a TCP port on 127.0.0.1 nothing listens on right now.
``authz_server``
    A running ``authz serve`` (``python -m authz`` of this interpreter, so the venv is used) on a free
    loopback port, with a temporary data dir and SQLite file, waited on until
    ``/.well-known/oauth-authorization-server`` answers. Development mode by default; for a normal
    server parametrize indirectly: ``@pytest.mark.parametrize("authz_server", [{"dev": False}], indirect=True)``
    (keys: ``dev: bool``, ``env: dict`` of extra AUTHZ_* settings, ``serve_args: list``).
    It is a :class:`conformance.procs.AuthzServer`:

    - ``issuer`` (``http://127.0.0.1:<port>``), ``url``, ``port``, ``data_dir``, ``env``, ``log_path``;
    - ``cli(*args, check=True, timeout=60) -> subprocess.CompletedProcess[str]`` runs ``authz *args`` with
      the server's settings (raises ``CliError``, output included, on a non-zero exit when ``check``);
    - ``log()`` the server's output so far; ``stop()``.

    The server reloads cached clients/resources within ``cache_staleness`` (1 s by default): a test that
    registers through ``cli()`` and uses the registration at once can pass ``env={"AUTHZ_CACHE_STALENESS":
    "0.1"}``, or use ``authz_server_factory(start=False)``, register, then ``start()``.
    The log is attached to the report of a failing test. Stopped (process group killed) at teardown.
``authz_server_factory``
    ``authz_server_factory(dev=True, env=None, serve_args=(), start=True) -> AuthzServer`` for tests that
    need several servers or want to register clients before the server starts (``start=False``, then
    ``server.cli("migrate")``, ``server.cli("clients", "add", ...)``, ``server.start()``). All are stopped
    at teardown.
``node22``
    Path of a Node >= 22 binary (``$AUTHZ_NODE``, else ``.node/`` from ``scripts/node``). Skips when absent,
    fails instead when ``AUTHZ_REQUIRE_SERVICES=1``.
``chromium_executable``
    Path of headless Chromium (``$AUTHZ_CHROMIUM``, else ``/usr/bin/chromium``), for Playwright's
    ``launch(executable_path=..., args=CHROMIUM_ARGS)``. Skips / fails like ``node22``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from conformance.procs import AuthzServer
from conformance.procs import free_port as _free_port
from conformance.run_as_suite import find_node

REQUIRE_SERVICES = os.environ.get("AUTHZ_REQUIRE_SERVICES") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_E2E_DIR = Path(__file__).resolve().parent
_SERVERS = pytest.StashKey[list[AuthzServer]]()


def missing(reason: str) -> None:
    """Skip for a missing tool or service, or fail when AUTHZ_REQUIRE_SERVICES=1 (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AUTHZ_REQUIRE_SERVICES=1: install it, see .ci/run)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"authz serve log ({server.issuer})", server.log()))
    return report


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``free_port()`` -> a free TCP port on 127.0.0.1."""
    return _free_port


@pytest.fixture
def authz_server_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started: list[AuthzServer] = []
    request.node.stash[_SERVERS] = started

    def make(
        dev: bool = True,
        env: Mapping[str, str] | None = None,
        serve_args: Sequence[str] = (),
        start: bool = True,
    ) -> AuthzServer:
        server = AuthzServer(tmp_path_factory.mktemp("authz"), dev=dev, env=env, serve_args=serve_args)
        started.append(server)
        return server.start() if start else server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def authz_server(request: pytest.FixtureRequest, authz_server_factory: Any) -> AuthzServer:
    params: dict[str, Any] = dict(getattr(request, "param", None) or {})
    server: AuthzServer = authz_server_factory(**params)
    return server


@pytest.fixture(scope="session")
def node22() -> str:
    node = find_node()
    if node is None:
        missing("Node >= 22 not found (set AUTHZ_NODE or run scripts/node)")
    assert node is not None
    return node


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("AUTHZ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        missing(f"Chromium not found at {path} (apt-get install chromium, or set AUTHZ_CHROMIUM)")
    return path
