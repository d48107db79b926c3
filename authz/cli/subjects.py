"""``authz subjects``: a person's profile (encrypted with their own key), export, erasure (GDPR)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from authz.cli.admin import _ctx
from authz.compliance.subjects import erase_subject, export_subject, vault
from authz.identity.agents.errors import NotFound

ACTOR = "cli"


def register(sub: Any) -> None:
    p = sub.add_parser("subjects", help="a person's data: profile, export (GDPR Art. 15/20), erase (Art. 17)")
    a = p.add_subparsers(dest="action", required=True)
    pr = a.add_parser("profile", help="set a user's profile (stored encrypted with the user's own key)")
    pr.add_argument("subject", help="the user id (authz users list)")
    pr.add_argument("--email")
    pr.add_argument("--name", help="display name")
    pr.set_defaults(func=cmd_profile)
    ex = a.add_parser("export", help="print everything held about a user as one JSON document")
    ex.add_argument("subject", help="the user id")
    ex.set_defaults(func=cmd_export)
    er = a.add_parser(
        "erase",
        help="erase a user: revoke their grants, delete account and consents, destroy their key",
        description="Audit and billing records stay under a pseudonym nothing links to the person any more "
        "(GDPR Art. 17(3)(b)/(e)); every audit proof stays valid. Prints what was erased and what was kept.",
    )
    er.add_argument("subject", help="the user id")
    er.add_argument("--yes", action="store_true", help="required: erasure cannot be undone")
    er.set_defaults(func=cmd_erase)


def _fail(message: str) -> int:
    print(f"authz: {message}", file=sys.stderr)
    return 1


def cmd_profile(args: argparse.Namespace) -> int:
    ctx = _ctx()
    if ctx.store.get_user(args.subject) is None:
        return _fail(f"no user {args.subject!r}: see `authz users list`")
    profile = {k: v for k, v in (("email", args.email), ("name", args.name)) if v}
    vault(ctx).put(args.subject, {**(vault(ctx).get(args.subject) or {}), **profile})
    ctx.audit.record("subject.profile_changed", subject=args.subject, actor=ACTOR, fields=sorted(profile))
    ctx.audit.flush()
    print(f"profile of {args.subject} stored (encrypted with its own key)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(export_subject(_ctx(), args.subject, ACTOR), indent=1))
    except NotFound as exc:
        return _fail(f"{exc}: see `authz users list`")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    if not args.yes:
        return _fail(f"erasing {args.subject} cannot be undone: run `authz subjects erase {args.subject} --yes`")
    try:
        result = erase_subject(_ctx(), args.subject, ACTOR)
    except NotFound as exc:
        return _fail(f"{exc}: see `authz users list`")
    print(json.dumps(result, indent=1))
    return 0
