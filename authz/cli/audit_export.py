"""``authz audit export | verify-export | purge``: regulator bundles and retention."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authz.audit import bundle_verifier
from authz.audit.export import ExportError, ExportRequest, export_bundle
from authz.audit.retention import PurgeError, purge_before
from authz.cli.admin import _ctx

ACTOR = "cli"


def register(a: Any) -> None:
    ex = a.add_parser(
        "export",
        help="write a signed, offline-verifiable bundle of the records of a period (AI Act Art. 12/19/21)",
        description="Writes one tar: records (JSON lines, RFC 8785), their range proof, the signed checkpoint, "
        "the consistency proof from the previous export, the verifier key, a JSON Schema, a data dictionary, "
        "a README and a standalone verifier. The export itself is an audit record.",
    )
    ex.add_argument("--from", dest="at_from", required=True, help="start of the period (ISO date or date-time, UTC)")
    ex.add_argument("--to", dest="at_to", required=True, help="end of the period, exclusive (ISO date or date-time)")
    ex.add_argument("--system", help="only this AI system's records in full (an agent or client id)")
    ex.add_argument("--request", default="", help="the reference of the authority's reasoned request")
    ex.add_argument("--out", type=Path, help="bundle path (default export-<system>-<from>-<to>.tar)")
    ex.set_defaults(func=cmd_export)
    ve = a.add_parser("verify-export", help="verify an export bundle offline (no database needed)")
    ve.add_argument("bundle", type=Path)
    ve.add_argument("--key", help="the log's verifier key (<name>+<id>+<key>, or a file holding it); "
                    "default: the key inside the bundle, which proves only that it was not changed")  # fmt: skip
    ve.set_defaults(func=cmd_verify_export)
    pu = a.add_parser(
        "purge",
        help="delete records older than a date (kept: their tree hashes, so proofs still verify)",
        description="Refuses dates younger than AUTHZ_AUDIT_RETENTION_DAYS (default 183: AI Act Art. 19/26(6) "
        "ask for at least six months). Deletes the oldest records up to the date; the Merkle tree keeps their "
        "leaf hashes; the purge is itself a record carrying the last purged chain hash.",
    )
    pu.add_argument("--before", required=True, help="delete records before this ISO date or date-time (UTC)")
    pu.add_argument("--yes", action="store_true", help="do it (without it: say what would be deleted)")
    pu.set_defaults(func=cmd_purge)


def parse_time(text: str, flag: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not an ISO date (2026-01-31) or date-time (2026-01-31T12:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def cmd_export(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    try:
        at_from, at_to = parse_time(args.at_from, "--from"), parse_time(args.at_to, "--to")
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    if at_to <= at_from:
        print("authz: --to must be after --from", file=sys.stderr)
        return 1
    ctx = _ctx()
    assert ctx.audit_store is not None and ctx.checkpointer is not None
    ctx.audit.flush()
    info = _system_info(ctx, args.system)
    out = args.out or Path(f"export-{args.system or 'all'}-{args.at_from}-{args.at_to}.tar".replace(":", ""))
    req = ExportRequest(at_from, at_to, args.system, args.request, info)
    started = time.perf_counter()
    try:
        manifest = export_bundle(ctx.audit_store, ctx.checkpointer, req, out, version("authz"))
    except ExportError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    log = manifest["log"]
    ctx.audit.operator_change(
        "audit", "exported", actor=ACTOR, target=args.system, tree_size=log["tree_size"], root=log["root"],
        range=log["range"], records=manifest["counts"]["records"], request=args.request or None,
        bundle_sha256=_sha256_file(out),
    )  # fmt: skip
    ctx.audit.flush()
    print(
        f"wrote {out}: {manifest['counts']['records']} records (tree {log['tree_size']}, leaves "
        f"{log['range'][0]}..{log['range'][1] - 1}) in {time.perf_counter() - started:.1f} s; "
        f"verify with `authz audit verify-export {out} --key '{ctx.checkpointer.verifier.encode()}'`"
    )
    return 0


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _system_info(ctx: Any, system: str | None) -> dict[str, Any]:
    """The AI Act record of the system (risk class, purpose, provider, deployer) when one exists."""
    del ctx, system  # filled from authz.compliance once AI system records exist
    return {}


def cmd_verify_export(args: argparse.Namespace) -> int:
    if not args.bundle.is_file():
        print(f"authz: {args.bundle} is not a file: pass the .tar `authz audit export` wrote", file=sys.stderr)
        return 1
    argv = [str(args.bundle), *(["--key", args.key] if args.key else [])]
    started = time.perf_counter()
    code = bundle_verifier.main(argv)
    if code == 0:
        print(f"verified in {time.perf_counter() - started:.1f} s" + ("" if args.key else
              "; the key came from the bundle: compare it with the provider's published key"))  # fmt: skip
    return code


def cmd_purge(args: argparse.Namespace) -> int:
    try:
        before = parse_time(args.before, "--before")
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx = _ctx()
    assert ctx.audit_store is not None
    ctx.audit.flush()
    try:
        result = purge_before(ctx.audit_store, before, ctx.settings.audit_retention_days, dry_run=not args.yes)
    except PurgeError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    if not args.yes:
        print(f"would delete {result.count} records (seq <= {result.through_seq}); run again with --yes")
        return 0
    print(f"deleted {result.count} records (seq <= {result.through_seq}); their tree hashes are kept")
    return 0
