"""``authz policy ...``: the policy authors' tools (check, test, fmt, explain, diff, generate).

The same commands as ``python -m policies``; ``authz policy --help`` lists them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "policy",
        help="Cedar scope policies: check, test, fmt, explain, diff, generate",
        add_help=False,
        description="Forwarded to the policies toolkit; `authz policy --help` shows its commands.",
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_policy)


def cmd_policy(args: argparse.Namespace) -> int:
    return forward(args.args)


def forward(argv: list[str]) -> int:
    from policies.__main__ import main

    try:
        return main(argv or ["--help"], prog="authz policy")
    except SystemExit as exc:  # argparse's --help and usage errors
        if isinstance(exc.code, str):  # a message: print it, as argparse would
            print(exc.code, file=sys.stderr)
            return 2
        return int(exc.code or 0)
