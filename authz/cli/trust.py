"""``authz trust``: the JWT issuers this server trusts (enterprise IdPs for ID-JAG, subject-token issuers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from authz.core.settings import Settings
from authz.oauth.trust import DEFAULT_ALGORITHMS, KINDS, TrustStore, register_issuer


def register(sub: Any) -> None:
    t = sub.add_parser("trust", help="manage trusted JWT issuers (ID-JAG IdPs, token-exchange subjects)")
    actions = t.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="trust an issuer (or replace its settings)")
    add.add_argument("issuer", help="the exact 'iss' value of the issuer's JWTs")
    keys = add.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-uri", help="URL of the issuer's JWK Set (fetched SSRF-safe, cached)")
    keys.add_argument("--jwks-file", help="JSON file with the issuer's public JWK Set")
    add.add_argument(
        "--kind",
        choices=KINDS,
        default="idp",
        help="idp: ID-JAG assertions (jwt-bearer grant); subject: subject/actor tokens of token exchange",
    )
    add.add_argument(
        "--algorithms",
        default=",".join(DEFAULT_ALGORITHMS),
        help="comma-separated allow-list of asymmetric JWS algorithms (default %(default)s)",
    )
    add.add_argument("--audience", help="kind subject: the 'aud' its tokens carry for us (default: our issuer)")
    add.set_defaults(func=cmd_trust_add)
    actions.add_parser("list", help="list trusted issuers").set_defaults(func=cmd_trust_list)
    rm = actions.add_parser("remove", help="stop trusting an issuer")
    rm.add_argument("issuer")
    rm.set_defaults(func=cmd_trust_remove)


def _store() -> tuple[Settings, TrustStore, Any]:
    from authz.cli.admin import _ctx

    ctx = _ctx()
    return ctx.settings, cast(TrustStore, ctx.store), ctx


def cmd_trust_add(args: argparse.Namespace) -> int:
    settings, store, ctx = _store()
    try:
        jwks = json.loads(Path(args.jwks_file).read_text()) if args.jwks_file else None
    except (OSError, ValueError) as exc:
        print(f"authz: cannot read {args.jwks_file}: {exc}", file=sys.stderr)
        return 1
    try:
        row = register_issuer(
            store,
            args.issuer,
            args.kind,
            jwks=jwks,
            jwks_uri=args.jwks_uri,
            algorithms=[a.strip() for a in args.algorithms.split(",") if a.strip()],
            audience=args.audience,
            allow_loopback=settings.cimd_allow_loopback,
        )
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx.audit.operator_change(
        "trust", "added", actor="cli", target=row.issuer, issuer_kind=row.kind, algorithms=row.algorithms
    )
    ctx.audit.flush()
    print(f"issuer:     {row.issuer}")
    print(f"kind:       {row.kind}")
    print(f"algorithms: {','.join(row.algorithms)}")
    return 0


def cmd_trust_list(_args: argparse.Namespace) -> int:
    _settings, store, _ctx = _store()
    print(f"{'ISSUER':50} {'KIND':8} {'ALGORITHMS':16} KEYS")
    for row in store.list_trusted_issuers():
        keys = row.jwks_uri or f"inline ({len((row.jwks or {}).get('keys', []))} keys)"
        print(f"{row.issuer[:50]:50} {row.kind:8} {','.join(row.algorithms):16} {keys}")
    return 0


def cmd_trust_remove(args: argparse.Namespace) -> int:
    _settings, store, ctx = _store()
    if not store.delete_trusted_issuer(args.issuer):
        print(f"authz: no trusted issuer {args.issuer!r}", file=sys.stderr)
        return 1
    ctx.audit.operator_change("trust", "removed", actor="cli", target=args.issuer)
    ctx.audit.flush()
    return 0
