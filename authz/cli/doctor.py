"""``authz doctor``: every check a deployment needs before its first start, one readable line each."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from authz import preflight
from authz.core.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check settings, database, key-encryption key, Redis, policies and extras (run before the first start)",
        description="Check what `authz serve` needs, one line each: settings; the key-encryption key (well-formed, "
        "and the one the stored signing keys were encrypted with); the database (driver, reachable, migrated); "
        "Redis (when AUTHZ_REDIS_URL is set); the policy set and what it permits; the optional extras. "
        "Exit status 1 when a check fails. Nothing is written (an absent database is not created).",
    )
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(_args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except Exception as exc:
        problem = preflight.explain(exc)
        print(f"FAIL {'settings':14} {problem or exc}")
        return 1
    failed = 0
    for check in preflight.checks(settings):
        print(check.line())
        failed += not check.ok and not check.optional
    print("doctor: all checks passed" if not failed else f"doctor: {failed} check(s) failed", file=sys.stderr)
    return 1 if failed else 0
