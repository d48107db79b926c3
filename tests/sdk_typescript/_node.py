"""Build helpers of the TypeScript SDK tests: Node 22, ``npm ci`` once per lockfile, ``tsc``.

``npm ci --prefer-offline`` installs ``sdk/typescript/node_modules`` (git-ignored) from the committed
lockfile, under a file lock, and only when the lockfile changed since the last install (a stamp in
``node_modules``); npm's own cache makes a reinstall work offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.run_as_suite import find_node

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "typescript"
REQUIRE_SERVICES = os.environ.get("AUTHZ_REQUIRE_SERVICES") == "1"


def node22() -> str:
    node = find_node()
    if node is None:
        reason = "Node >= 22 not found (set AUTHZ_NODE or run scripts/node)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (AUTHZ_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)
    return node


def node_env(node: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _run(args: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(args, cwd=SDK, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def install(node: str) -> None:
    """``npm ci`` when the lockfile changed since the last install."""
    lock = SDK / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes() + (SDK / "package.json").read_bytes()).hexdigest()
    stamp = SDK / "node_modules" / ".authz-lock-sha256"
    with open(SDK / ".npm-install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == digest:
            return
        npm = shutil.which("npm", path=str(Path(node).parent)) or shutil.which("npm")
        assert npm is not None, "npm is needed once to install the SDK's devDependencies"
        _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], node_env(node), 600)
        stamp.write_text(digest)


def build(node: str) -> None:
    """``tsc`` for the package (``dist/``) and for the tests and example (``build/``)."""
    install(node)
    tsc = str(SDK / "node_modules" / "typescript" / "bin" / "tsc")
    with open(SDK / ".npm-install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        _run([node, tsc, "-p", "tsconfig.json"], node_env(node), 300)
        _run([node, tsc, "-p", "tsconfig.test.json"], node_env(node), 300)


def node_test(
    node: str, files: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``node --test`` over compiled test files (TAP on stdout)."""
    args = [node, "--test", "--test-reporter=tap", "--test-concurrency=1", *files]
    return subprocess.run(
        args, cwd=SDK, env=node_env(node, **env), capture_output=True, text=True, timeout=timeout, check=False
    )
