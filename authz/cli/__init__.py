"""The ``authz`` command: ``authz --help`` lists every subcommand; each has its own ``--help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from authz import preflight
from authz.cli import admin, agents, audit, doctor, licenses, policy, serve, subjects, trust
from authz.core.settings import Settings, UnsafeSettingsError
from authz.metering import cli as metering_cli


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="authz",
        description="OAuth 2.1 authorization server for MCP servers. Settings come from AUTHZ_* environment "
        "variables or the TOML file named by AUTHZ_CONFIG (see docs/configuration.md).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    admin.register(sub)
    agents.register(sub)
    audit.register(sub)
    subjects.register(sub)
    trust.register(sub)
    policy.register(sub)
    metering_cli.register(sub)
    __import__("authz.cli.budgets", fromlist=["register"]).register(sub)
    licenses.register(sub)
    doctor.register(sub)
    __import__("authz.cli.billing", fromlist=["register"]).register(sub)
    __import__("authz.compliance.cli", fromlist=["register"]).register(sub)
    __import__("authz.compliance.cli", fromlist=["register"]).register_incidents(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["policy"]:  # the policy toolkit parses its own arguments (``--help`` included)
        return policy.forward(argv[1:])
    args = parser().parse_args(argv)
    try:
        result = args.func(args)
    except UnsafeSettingsError as exc:
        print(f"authz: refusing to start: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a set-up problem (driver, database, key, extra) is one line, not a traceback
        problem = preflight.explain(exc, _settings())
        if problem is None:
            raise
        print(f"authz: {problem}", file=sys.stderr)
        return 1
    return int(result or 0)


def _settings() -> Settings | None:
    try:
        return Settings()
    except Exception:
        return None


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 1."""
