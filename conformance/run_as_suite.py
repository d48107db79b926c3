"""Run the official MCP conformance suite's ``authorization`` mode against a real ``authz serve``.

usage: python -m conformance.run_as_suite [-o DIR] [--node PATH] [--timeout SECONDS]

What it does:

1. installs the pinned ``@modelcontextprotocol/conformance`` under ``conformance/.npm/`` (Node 22);
2. starts ``authz serve --dev`` on a free loopback port with a temporary data dir (SQLite),
   ``AUTHZ_ISSUER=http://127.0.0.1:<port>``, after registering through the CLI a resource
   ``http://127.0.0.1:<p2>/mcp`` (scope ``tools:read``) and a public client ``conf-client`` whose
   redirect URI is the suite's callback ``http://127.0.0.1:<cbport>/callback``;
3. runs ``conformance authorization`` WITHOUT ``--scenario`` (alone, the code-grant scenario lacks
   the metadata the first scenario fetches), reads its stdout until it prints the authorization URL,
   GETs that URL following redirects (development mode consents automatically and redirects to the
   suite's callback), and waits for the suite to finish;
4. parses every ``checks.json`` under the results dir, prints each check, writes ``summary.json``
   (``{"ok", "package", "suite_exit_code", "scenarios": {scenario: [check, ...]}, "problems"}``) and
   exits 1 on any FAILURE, WARNING or SKIPPED check, on a missing scenario, on a non-zero suite
   exit, or on a timeout. Every process it started is killed before it returns.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `conformance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2

from conformance.procs import REPO_ROOT, AuthzServer, clean_env, free_port, kill_group

PACKAGE = "@modelcontextprotocol/conformance"
# Pinned: alpha versions change scenarios and flags. 0.2.0-alpha.12 is the first with `authorization --resource`.
VERSION = "0.2.0-alpha.12"
NPM_DIR = REPO_ROOT / "conformance" / ".npm"
LOCAL_NODE = REPO_ROOT / ".node" / "node_modules" / "node" / "bin" / "node"
EXPECTED_SCENARIOS = ("authorization-server-metadata-endpoint", "authorization-code-grant")
BAD_STATUSES = ("FAILURE", "WARNING", "SKIPPED")
CLIENT_ID = "conf-client"
SCOPES = "tools:read"
AUTH_URL_RE = re.compile(r"^https?://\S*[?&]response_type=code\S*$")
RESULT_DIR_RE = re.compile(r"^(?:authorization-server-)?(?P<scenario>.+?)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


class RunnerError(Exception):
    """The runner could not run the suite (no Node 22, npm failure...): not a verdict on the AS."""


# -- Node and the package -----------------------------------------------------------------------
def node_major(node: str) -> int:
    try:
        out = subprocess.run(
            [node, "-e", "process.stdout.write(process.versions.node)"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        return int(out.split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def find_node(explicit: str | None = None) -> str | None:
    """Node >= 22: ``explicit``, else ``$AUTHZ_NODE``, else ``.node/`` (made by ``scripts/node``)."""
    for candidate in (explicit, os.environ.get("AUTHZ_NODE"), str(LOCAL_NODE)):
        if candidate and Path(candidate).exists() and node_major(candidate) >= 22:
            return candidate
    return None


def _installed_version() -> str | None:
    manifest = NPM_DIR / "node_modules" / PACKAGE / "package.json"
    try:
        version: str = json.loads(manifest.read_text())["version"]
        return version
    except (OSError, ValueError, KeyError):
        return None


def ensure_suite(node: str) -> Path:
    """Install the pinned suite under ``conformance/.npm/`` (once; locked against parallel runs)."""
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    (NPM_DIR / ".gitignore").write_text("# installed by conformance/run_as_suite.py\n*\n")
    entry = NPM_DIR / "node_modules" / PACKAGE / "dist" / "index.js"
    with open(NPM_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() == VERSION and entry.exists():
            return entry
        npm = shutil.which("npm")
        if npm is None:
            raise RunnerError("npm is not on PATH: it is needed once to install the conformance suite")
        print(f"run_as_suite: installing {PACKAGE}@{VERSION} under {NPM_DIR.relative_to(REPO_ROOT)}/ ...", flush=True)
        # npm's own `#!/usr/bin/env node` must find Node 22 first.
        env = clean_env({"PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
        done = subprocess.run(
            [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", "--loglevel=error",
             "--save-exact", f"{PACKAGE}@{VERSION}"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0 or _installed_version() != VERSION or not entry.exists():
            raise RunnerError(
                f"npm install {PACKAGE}@{VERSION} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
    return entry


# -- results --------------------------------------------------------------------------------------
@dataclass
class Result:
    ok: bool = False
    suite_exit_code: int | None = None
    scenarios: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    suite_output: list[str] = field(default_factory=list)
    server_log: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "package": f"{PACKAGE}@{VERSION}",
            "suite_exit_code": self.suite_exit_code,
            "scenarios": self.scenarios,
            "problems": self.problems,
        }


def parse_results(results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every ``checks.json`` under ``results_dir``, by scenario (taken from the result dir's name)."""
    scenarios: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results_dir.rglob("checks.json")):
        match = RESULT_DIR_RE.match(path.parent.name)
        scenario = match["scenario"] if match else path.parent.name
        checks = json.loads(path.read_text())
        scenarios.setdefault(scenario, []).extend(
            {k: check.get(k) for k in ("id", "name", "status", "description", "errorMessage")} for check in checks
        )
    return scenarios


def judge(result: Result) -> None:
    for scenario in EXPECTED_SCENARIOS:
        if not result.scenarios.get(scenario):
            result.problems.append(f"scenario {scenario} produced no checks")
    for scenario, checks in result.scenarios.items():
        result.problems.extend(
            f"{scenario}: {c['id']} is {c['status']}: {c.get('errorMessage') or c.get('description')}"
            for c in checks
            if c["status"] in BAD_STATUSES
        )
    if result.suite_exit_code != 0:
        result.problems.append(f"the suite exited with {result.suite_exit_code}")
    result.ok = not result.problems


# -- the run --------------------------------------------------------------------------------------
def _pump(stream: Any, lines: queue.Queue[str | None], keep: list[str]) -> None:
    for line in stream:
        keep.append(line.rstrip("\n"))
        lines.put(keep[-1])
    lines.put(None)


def run(results_dir: Path, node: str, timeout: float = 120.0, work_dir: Path | None = None) -> Result:
    """Run the suite once against a fresh ``authz serve --dev``; never raises for AS failures."""
    entry = ensure_suite(node)
    deadline = time.monotonic() + timeout
    result = Result()
    results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="authz-conformance-", dir=work_dir) as tmp:
        resource = f"http://127.0.0.1:{free_port()}/mcp"
        callback_port = free_port()
        server = AuthzServer(Path(tmp) / "data", dev=True)
        suite: subprocess.Popen[str] | None = None
        try:
            server.cli("migrate")
            server.cli("resources", "add", resource, "--scopes", SCOPES, "--name", "conformance MCP server")
            server.cli("clients", "add", "--client-id", CLIENT_ID, "--name", "MCP conformance suite", "--public",
                       "--redirect-uri", f"http://127.0.0.1:{callback_port}/callback")  # fmt: skip
            server.start()
            print(f"run_as_suite: authz serve --dev at {server.issuer} (log {server.log_path})", flush=True)
            cmd = [node, str(entry), "authorization", "--url", server.issuer, "--client-id", CLIENT_ID,
                   "--resource", resource, "-p", str(callback_port), "-o", str(results_dir)]  # fmt: skip
            print("run_as_suite: $ conformance " + " ".join(cmd[2:]), flush=True)
            suite = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=clean_env(), cwd=tmp, start_new_session=True,
            )  # fmt: skip
            lines: queue.Queue[str | None] = queue.Queue()
            reader = threading.Thread(target=_pump, args=(suite.stdout, lines, result.suite_output), daemon=True)
            reader.start()
            _drive(lines, deadline, result)
            try:
                result.suite_exit_code = suite.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                result.problems.append(f"the suite did not finish within {timeout:.0f}s")
            kill_group(suite)
            reader.join(timeout=5)
        except Exception as exc:
            result.problems.append(f"runner error: {type(exc).__name__}: {exc}")
        finally:
            if suite is not None:
                kill_group(suite)
                if suite.stdout is not None:
                    suite.stdout.close()
            server.stop()
            result.server_log = server.log()
        result.scenarios = parse_results(results_dir)
        judge(result)
    (results_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result


def _drive(lines: queue.Queue[str | None], deadline: float, result: Result) -> None:
    """Echo the suite's output; when it prints the authorization URL, play the browser."""
    while True:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            result.problems.append("timed out waiting for the suite's authorization URL")
            return
        if line is None:
            return
        print(f"  | {line}", flush=True)
        if AUTH_URL_RE.match(line.strip()):
            _browse(line.strip(), result)


def _browse(url: str, result: Result) -> None:
    """GET the authorization URL, following redirects to the suite's callback (dev mode auto-consents)."""
    try:
        with httpx2.Client(timeout=15) as client:
            statuses = []
            for _ in range(10):  # follow redirects by hand: the suite may print the URL before it listens
                response = _get_when_listening(client, url)
                statuses.append(str(response.status_code))
                if not response.is_redirect:
                    break
                url = str(response.url.join(response.headers["location"]))
        print(f"run_as_suite: browsed the authorization URL: {' -> '.join(statuses)}, ended at {url}", flush=True)
        if "/callback" not in url:
            result.problems.append(
                f"the authorization URL did not redirect to the callback: ended at {url} "
                f"({response.status_code}): {response.text[:300]!r}"
            )
    except httpx2.HTTPError as exc:
        result.problems.append(f"GET authorization URL failed: {type(exc).__name__}: {exc}")


def _get_when_listening(client: httpx2.Client, url: str, patience: float = 10.0) -> httpx2.Response:
    give_up = time.monotonic() + patience
    while True:
        try:
            return client.get(url)
        except httpx2.ConnectError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def print_checks(title: str, scenarios: dict[str, list[dict[str, Any]]], problems: list[str], ok: bool) -> None:
    """One line per check of every scenario, then the runner's own problems and the verdict."""
    print(f"\n=== {title} ===")
    for scenario, checks in scenarios.items():
        for check in checks:
            extra = f" — {check['errorMessage']}" if check.get("errorMessage") else ""
            print(f"{check['status']:<8} {scenario} / {check['id']}{extra}")
    for problem in problems:
        print(f"PROBLEM  {problem}")
    print("PASS" if ok else "FAIL")


def report(result: Result) -> None:
    print_checks("conformance authorization (AS) checks", result.scenarios, result.problems, result.ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="results directory (default: conformance/results/as-<timestamp>)")  # fmt: skip
    parser.add_argument("--node", help="Node >= 22 binary (default: $AUTHZ_NODE, then .node/ from scripts/node)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole suite run (default 120)")
    args = parser.parse_args(argv)
    node = find_node(args.node)
    if node is None:
        print("run_as_suite: no Node >= 22 (set AUTHZ_NODE or run scripts/node)", file=sys.stderr)
        return 2
    output = args.output or REPO_ROOT / "conformance" / "results" / time.strftime("as-%Y%m%dT%H%M%S")
    try:
        result = run(output, node, timeout=args.timeout)
    except RunnerError as exc:
        print(f"run_as_suite: {exc}", file=sys.stderr)
        return 2
    if not result.ok:
        print(f"\n--- authz serve log ---\n{result.server_log}--- end of log ---")
    report(result)
    print(f"results: {output}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
