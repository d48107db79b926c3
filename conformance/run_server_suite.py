"""Run the official MCP conformance suite's ``server`` mode against the protected demo MCP server.

usage: python -m conformance.run_server_suite [-o DIR] [--node PATH] [--mode jwt|hybrid]
                                              [--spec-version V ...] [--scenario S] [--timeout SECONDS]

The suite acts as an MCP client but cannot send a bearer token (it has no option or environment
variable for headers). So the runner puts a small token-injecting reverse proxy in front of the
protected server; everything else is real, and the middleware stays in the path of every request:

    conformance server --url http://127.0.0.1:<proxy>/mcp
      -> token-injecting proxy (this process: Starlette + uvicorn + httpx2 streaming;
         adds ``Authorization: Bearer <token>``, streams responses (SSE) back unchanged)
      -> python -m resource_server.demo --mode hybrid|jwt   (ResourceServerMiddleware + MCP SDK)
      -> authz serve --dev   (JWKS, introspection)

What it does:

1. installs the pinned ``@modelcontextprotocol/conformance`` under ``conformance/.npm/`` (Node 22;
   shared with ``run_as_suite.py``);
2. starts ``authz serve --dev`` (temporary data dir, SQLite) after registering through the CLI the
   demo resource ``http://127.0.0.1:<p>/mcp`` (scopes ``tools:read tools:write tools:admin``) and a
   confidential ``client_credentials`` client;
3. for each spec version (default: every one the pinned suite knows, ``2025-11-25`` and
   ``2026-07-28``) starts the demo MCP server protected by the middleware (stateful sessions for
   2025-11-25, stateless for 2026-07-28 as that revision requires), gets a token with all three
   scopes, and runs ``conformance server --suite all --spec-version V --expected-failures
   conformance/expected-failures-server.yml`` through the proxy. The proxy refreshes its token
   before it expires (tokens live 300 s);
4. parses every ``checks.json``, prints each scenario's verdict, writes ``summary.json``
   (``{"ok", "package", "mode", "versions": {V: {"suite_exit_code", "passed", "failed",
   "expected_failures", "proxied_requests", "problems"}}}``) and exits 1 when any run has a new
   failure or a stale baseline entry (the suite's own exit code), when a proxied request never
   reached the middleware with a token, or on a timeout; 2 when it cannot run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `conformance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2

from conformance.procs import REPO_ROOT, AuthzServer, clean_env, free_port, kill_group
from conformance.proxy import ProxyStats, ProxyThread, TokenSource, build_proxy
from conformance.run_as_suite import PACKAGE, VERSION, RunnerError, ensure_suite, find_node

SPEC_VERSIONS = ("2025-11-25", "2026-07-28")
SCOPES = "tools:read tools:write tools:admin"
BASELINE = REPO_ROOT / "conformance" / "expected-failures-server.yml"
RESULT_DIR_RE = re.compile(r"^(?:server-)?(?P<scenario>.+?)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


# -- processes ----------------------------------------------------------------------------------
def cli_fields(output: str) -> dict[str, str]:
    """``key:   value   (comment)`` lines printed by the ``authz`` CLI -> {key: value}."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key and " " not in key.strip() and rest.strip():
            out[key.strip()] = rest.split()[0]
    return out


class DemoServer:
    """``python -m resource_server.demo`` in its own session, output to a log file."""

    def __init__(self, log_path: Path, port: int, issuer: str, mode: str, rs_id: str, rs_secret: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.log_path = log_path
        self._args = ["-m", "resource_server.demo", "--port", str(port), "--issuer", issuer, "--mode", mode,
                      "--conformance-fixtures"]  # fmt: skip
        if mode != "jwt":
            self._args += ["--client-id", rs_id]
        self._env = clean_env({"RS_CLIENT_SECRET": rs_secret})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, stateful: bool) -> None:
        args = [*self._args, *(["--stateful"] if stateful else [])]
        with open(self.log_path, "ab") as log:
            log.write(f"$ python {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, *args], env=self._env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        prm = f"http://127.0.0.1:{self.port}/.well-known/oauth-protected-resource/mcp"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RunnerError(f"the demo MCP server exited with {self.proc.returncode}\n{self.log()}")
            try:
                if httpx2.get(prm, timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RunnerError(f"the demo MCP server did not answer {prm}\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# -- results ------------------------------------------------------------------------------------
@dataclass
class VersionResult:
    spec_version: str
    suite_exit_code: int | None = None
    scenarios: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    proxied_requests: int = 0
    tokens_issued: int = 0
    output: list[str] = field(default_factory=list)

    def passed(self) -> list[str]:
        return sorted(s for s, checks in self.scenarios.items() if checks and all(_ok(c) for c in checks))

    def failed(self) -> list[str]:
        return sorted(s for s, checks in self.scenarios.items() if not checks or not all(_ok(c) for c in checks))

    def summary(self) -> dict[str, Any]:
        return {
            "suite_exit_code": self.suite_exit_code,
            "passed": self.passed(),
            "failed": self.failed(),
            "checks": {s: _worst_by_id(checks) for s, checks in sorted(self.scenarios.items())},
            "proxied_requests": self.proxied_requests,
            "tokens_issued": self.tokens_issued,
            "problems": self.problems,
        }


def _worst_by_id(checks: list[dict[str, Any]]) -> dict[str, str]:
    """{check id: status}; a check id repeated in a scenario keeps its worst status."""
    rank = {"FAILURE": 0, "WARNING": 1, "SKIPPED": 2, "INFO": 3, "SUCCESS": 4}
    out: dict[str, str] = {}
    for check in checks:
        status = str(check.get("status"))
        previous = out.get(check["id"])
        if previous is None or rank.get(status, 0) < rank.get(previous, 0):
            out[check["id"]] = status
    return out


def _ok(check: dict[str, Any]) -> bool:
    return check.get("status") not in ("FAILURE", "WARNING")


def parse_results(results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    scenarios: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results_dir.rglob("checks.json")):
        match = RESULT_DIR_RE.match(path.parent.name)
        scenario = match["scenario"] if match else path.parent.name
        checks = json.loads(path.read_text())
        scenarios.setdefault(scenario, []).extend(
            {k: check.get(k) for k in ("id", "name", "status", "description", "errorMessage")} for check in checks
        )
    return scenarios


# -- the run ------------------------------------------------------------------------------------
def run(
    results_dir: Path,
    node: str,
    *,
    mode: str = "hybrid",
    spec_versions: tuple[str, ...] = SPEC_VERSIONS,
    scenario: str | None = None,
    baseline: Path | None = BASELINE,
    timeout: float = 600.0,
) -> dict[str, VersionResult]:
    """Run the suite once per spec version; never raises for verdicts, only :class:`RunnerError`."""
    entry = ensure_suite(node)
    results_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, VersionResult] = {}
    with tempfile.TemporaryDirectory(prefix="authz-conformance-server-") as tmp:
        demo_port = free_port()
        resource = f"http://127.0.0.1:{demo_port}/mcp"
        server = AuthzServer(Path(tmp) / "data", dev=True)
        demo = DemoServer(Path(tmp) / "demo.log", demo_port, server.issuer, mode, "", "")
        try:
            server.cli("migrate")
            rs = cli_fields(server.cli("resources", "add", resource, "--scopes", SCOPES, "--name", "demo").stdout)
            agent = cli_fields(server.cli("clients", "add", "--name", "conformance agent").stdout)
            server.start()
            print(f"run_server_suite: authz serve --dev at {server.issuer} (log {server.log_path})", flush=True)
            demo = DemoServer(
                Path(tmp) / "demo.log", demo_port, server.issuer, mode, rs["client_id"], rs["client_secret"]
            )
            for version in spec_versions:
                result = VersionResult(version)
                out[version] = result
                tokens = TokenSource(
                    f"{server.issuer}/token", agent["client_id"], agent["client_secret"], resource, SCOPES
                )
                stats = ProxyStats()
                # 2025-11-25 has sessions (server-session-lifecycle); 2026-07-28 is stateless (server-stateless).
                demo.start(stateful=version < "2026-07-28")
                try:
                    _check_protected(demo.url, tokens.fetch_sync(), result)
                    with ProxyThread(build_proxy(f"http://127.0.0.1:{demo_port}", tokens, stats), free_port()) as proxy:
                        _run_suite(
                            node, entry, proxy.url + "/mcp", version, scenario, baseline, results_dir, timeout, result
                        )
                finally:
                    demo.stop()
                result.proxied_requests = stats.requests
                result.tokens_issued = tokens.issued
                result.scenarios = parse_results(results_dir / version)
                if stats.requests == 0:
                    result.problems.append("no request went through the proxy")
                if stats.challenges:
                    result.problems.append(f"the middleware challenged {stats.challenges} proxied request(s)")
                if result.suite_exit_code != 0:
                    result.problems.append(
                        f"the suite exited with {result.suite_exit_code} (new failure or stale baseline)"
                    )
                if not result.scenarios:
                    result.problems.append("no checks.json was written")
        except RunnerError:
            print(f"\n--- authz serve log ---\n{server.log()}--- demo MCP server log ---\n{demo.log()}--- end ---")
            raise
        except Exception as exc:
            out.setdefault("runner", VersionResult("runner")).problems.append(
                f"runner error: {type(exc).__name__}: {exc}"
            )
        finally:
            demo.stop()
            server.stop()
            failed = any(r.problems for r in out.values())
            if failed:
                print(f"\n--- authz serve log ---\n{server.log()}--- demo MCP server log ---\n{demo.log()}--- end ---")
    return out


def _check_protected(url: str, token: str, result: VersionResult) -> None:
    """The middleware really is in the path: no token -> 401 challenge; the proxy's token -> not 401."""
    body = {"jsonrpc": "2.0", "id": 0, "method": "ping"}
    headers = {"accept": "application/json, text/event-stream"}
    bare = httpx2.post(url, json=body, headers=headers, timeout=10)
    if bare.status_code != 401 or "resource_metadata=" not in bare.headers.get("www-authenticate", ""):
        result.problems.append(
            f"the demo answered a request without a token with {bare.status_code}, not a 401 challenge"
        )
    authed = httpx2.post(url, json=body, headers={**headers, "authorization": f"Bearer {token}"}, timeout=10)
    if authed.status_code in (401, 403):
        result.problems.append(f"the demo refused the runner's token: {authed.status_code} {authed.headers}")


def _run_suite(
    node: str,
    entry: Path,
    url: str,
    version: str,
    scenario: str | None,
    baseline: Path | None,
    results_dir: Path,
    timeout: float,
    result: VersionResult,
) -> None:
    cmd = [node, str(entry), "server", "--url", url, "--spec-version", version, "-o", str(results_dir / version)]
    cmd += ["--scenario", scenario] if scenario else ["--suite", "all"]
    if baseline is not None and baseline.exists() and not scenario:
        cmd += ["--expected-failures", str(baseline)]
    print(f"run_server_suite: $ conformance {' '.join(cmd[2:])}", flush=True)
    try:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=clean_env(),
            cwd=results_dir, timeout=timeout, start_new_session=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        result.problems.append(f"the suite did not finish within {timeout:.0f}s")
        result.output = str(exc.stdout or "").splitlines()
        return
    result.suite_exit_code = done.returncode
    result.output = (done.stdout + done.stderr).splitlines()
    # The suite's own verdict block (expected / stale / unexpected) is what matters; echo the tail.
    for line in _verdict_lines(result.output):
        print(f"  | {line}", flush=True)


def _verdict_lines(lines: list[str]) -> list[str]:
    strip = re.compile(r"\x1b\[[0-9;]*m")
    clean = [strip.sub("", line) for line in lines]
    for i, line in enumerate(clean):
        if line.startswith("=== SUMMARY ==="):
            return clean[i:]
    return clean[-40:]


def report(results: dict[str, VersionResult]) -> bool:
    ok = bool(results)
    for version, result in results.items():
        print(f"\n=== conformance server, spec {version}: {len(result.passed())} scenarios passed, "
              f"{len(result.failed())} failed (exit {result.suite_exit_code}) ===")  # fmt: skip
        print("passed:          " + ", ".join(result.passed()))
        print("failed/expected: " + ", ".join(result.failed()))
        print(f"proxied requests: {result.proxied_requests}, tokens issued: {result.tokens_issued}")
        for problem in result.problems:
            print(f"PROBLEM  {problem}")
        ok = ok and not result.problems
    print("PASS" if ok else "FAIL")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="results directory (default: conformance/results/server-<timestamp>)")  # fmt: skip
    parser.add_argument("--node", help="Node >= 22 binary (default: $AUTHZ_NODE, then .node/ from scripts/node)")
    parser.add_argument("--mode", choices=["jwt", "hybrid"], default="hybrid", help="middleware validation mode")
    parser.add_argument("--spec-version", action="append", choices=SPEC_VERSIONS, help="repeatable (default: all)")
    parser.add_argument("--scenario", help="run one scenario (no baseline check)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per suite run (default 600)")
    args = parser.parse_args(argv)
    node = find_node(args.node)
    if node is None:
        print("run_server_suite: no Node >= 22 (set AUTHZ_NODE or run scripts/node)", file=sys.stderr)
        return 2
    output = (args.output or REPO_ROOT / "conformance" / "results" / time.strftime("server-%Y%m%dT%H%M%S")).resolve()
    versions = tuple(args.spec_version or SPEC_VERSIONS)
    try:
        results = run(
            output, node, mode=args.mode, spec_versions=versions, scenario=args.scenario, timeout=args.timeout
        )
    except RunnerError as exc:
        print(f"run_server_suite: {exc}", file=sys.stderr)
        return 2
    ok = report(results)
    summary = {
        "ok": ok,
        "package": f"{PACKAGE}@{VERSION}",
        "mode": args.mode,
        "versions": {v: r.summary() for v, r in results.items()},
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {output}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
