"""Run the official MCP conformance suite in client mode against ``agent_client``.

usage: python -m conformance.run_client_suite [-o DIR] [--node PATH] [--timeout SECONDS] [--scenario S ...]

For each scenario (default: ``auth/client-credentials-jwt`` and ``auth/client-credentials-basic``,
the MCP client-credentials extension, and ``auth/dpop`` and ``auth/dpop-nonce``, SEP-1932 DPoP) it runs
``conformance client --command "<python> -m agent_client.conformance" --scenario S`` with the
pinned suite installed under ``conformance/.npm/`` (Node 22; see ``run_as_suite.py``). The suite
starts a mock MCP server and authorization server, hands our program their URL and the client
credentials (``MCP_CONFORMANCE_CONTEXT``), and grades what it does. The runner parses every
``checks.json``, prints each check, writes ``summary.json`` and exits 1 on any FAILURE or SKIPPED
check, a missing scenario, a non-zero suite exit or a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `conformance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance.procs import REPO_ROOT, clean_env, kill_group
from conformance.run_as_suite import PACKAGE, VERSION, RunnerError, ensure_suite, find_node, print_checks

# The MCP client-credentials extension, and SEP-1932 DPoP (RFC 9449): the only DPoP scenarios in 0.2.0-alpha.12
# are these client ones; the server (#395) and authorization-server (#396) DPoP scenarios are unreleased PRs.
SCENARIOS = ("auth/client-credentials-jwt", "auth/client-credentials-basic", "auth/dpop", "auth/dpop-nonce")
BAD_STATUSES = ("FAILURE", "SKIPPED")


@dataclass
class Result:
    ok: bool = False
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    scenarios: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    output: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "package": f"{PACKAGE}@{VERSION}",
            "exit_codes": self.exit_codes,
            "scenarios": self.scenarios,
            "problems": self.problems,
        }


def parse_checks(scenario_dir: Path) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for path in sorted(scenario_dir.rglob("checks.json")):
        checks.extend(
            {k: c.get(k) for k in ("id", "name", "status", "description", "errorMessage")}
            for c in json.loads(path.read_text())
        )
    return checks


def client_command() -> str:
    return f"{sys.executable} -m agent_client.conformance"


def run_scenario(entry: Path, node: str, scenario: str, results_dir: Path, timeout: float, result: Result) -> None:
    out = results_dir / scenario.replace("/", "_")
    out.mkdir(parents=True, exist_ok=True)
    cmd = [node, str(entry), "client", "--command", client_command(), "--scenario", scenario, "-o", str(out)]
    print(f"run_client_suite: $ conformance {' '.join(cmd[2:])}", flush=True)
    env = clean_env({"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))})
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, cwd=out, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
        result.exit_codes[scenario] = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        output, _ = proc.communicate()
        result.exit_codes[scenario] = None
        result.problems.append(f"{scenario}: the suite did not finish within {timeout:.0f}s")
    finally:
        kill_group(proc)
    result.output[scenario] = output or ""
    checks = parse_checks(out)
    result.scenarios[scenario] = checks
    if not checks:
        result.problems.append(f"{scenario}: produced no checks")
    result.problems.extend(
        f"{scenario}: {c['id']} is {c['status']}: {c.get('errorMessage') or c.get('description')}"
        for c in checks
        if c["status"] in BAD_STATUSES
    )
    if result.exit_codes[scenario] not in (0, None):
        result.problems.append(f"{scenario}: the suite exited with {result.exit_codes[scenario]}")


def run(results_dir: Path, node: str, scenarios: tuple[str, ...] = SCENARIOS, timeout: float = 120.0) -> Result:
    """Run each scenario once; never raises for client failures (they are in the result)."""
    entry = ensure_suite(node)
    results_dir.mkdir(parents=True, exist_ok=True)
    result = Result()
    for scenario in scenarios:
        try:
            run_scenario(entry, node, scenario, results_dir, timeout, result)
        except Exception as exc:
            result.problems.append(f"{scenario}: runner error: {type(exc).__name__}: {exc}")
    result.ok = not result.problems
    (results_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result


def report(result: Result) -> None:
    print_checks("conformance client checks (agent_client)", result.scenarios, result.problems, result.ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="results directory (default: conformance/results/client-<timestamp>)")  # fmt: skip
    parser.add_argument("--node", help="Node >= 22 binary (default: $AUTHZ_NODE, then .node/ from scripts/node)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per scenario (default 120)")
    parser.add_argument("--scenario", action="append", help="scenario to run (repeatable; default: all four)")
    args = parser.parse_args(argv)
    node = find_node(args.node)
    if node is None:
        print("run_client_suite: no Node >= 22 (set AUTHZ_NODE or run scripts/node)", file=sys.stderr)
        return 2
    output = args.output or REPO_ROOT / "conformance" / "results" / time.strftime("client-%Y%m%dT%H%M%S")
    try:
        result = run(output, node, tuple(args.scenario or SCENARIOS), timeout=args.timeout)
    except RunnerError as exc:
        print(f"run_client_suite: {exc}", file=sys.stderr)
        return 2
    if not result.ok:
        for scenario, text in result.output.items():
            print(f"\n--- suite output: {scenario} ---\n{text}--- end ---")
    report(result)
    print(f"results: {output}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
