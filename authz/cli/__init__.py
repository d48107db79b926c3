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
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:  # argparse would blame the top-level command; name the subcommand and its --help instead
        deepest = _subcommand(top, argv)
        deepest.error(f"unrecognized arguments: {' '.join(extra)} (see: {deepest.prog} --help)")
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


def _subcommand(top: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of the deepest subcommand ``argv`` names (``authz agents create``)."""
    current = top
    for word in argv:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            if word.startswith("-"):
                continue
            break
        current = subs[0].choices[word]
    return current


def _settings() -> Settings | None:
    try:
        return Settings()
    except Exception:
        return None


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 1."""
