"""``authz audit``: list, verify, prove, checkpoint, export, verify-export and purge the audit log."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from authz.audit.checkpoints import CheckpointDir
from authz.audit.note import format_proof
from authz.audit.store import AuditTreeStore, record_line
from authz.audit.verify import verify_log
from authz.cli import audit_export
from authz.context import Context


def register(sub: Any) -> None:
    a = sub.add_parser("audit", help="the audit log: list, verify, prove, export").add_subparsers(
        dest="action", required=True
    )
    al = a.add_parser("list", help="print audit records as JSON lines")
    al.add_argument("--after", type=int, default=0, help="only records after this sequence number")
    al.add_argument("--limit", type=int, default=100)
    al.add_argument("--resolve", action="store_true", help="show the subject behind each pseudonym (if not erased)")
    al.set_defaults(func=cmd_list)
    a.add_parser(
        "verify",
        help="verify the hash chain, the Merkle tree and every signed checkpoint (database and directory)",
        description="Exit 0 when the log is intact; 1 with one line per problem otherwise. The checkpoints in "
        "AUTHZ_AUDIT_CHECKPOINT_DIR (outside the database) are what catches a truncated or rewritten log.",
    ).set_defaults(func=cmd_verify)
    pr = a.add_parser("prove", help="print a c2sp.org/tlog-proof@v1 that record SEQ is in the signed log")
    pr.add_argument("seq", type=int, help="the record's sequence number (authz audit list)")
    pr.set_defaults(func=cmd_prove)
    a.add_parser("checkpoint", help="sign a checkpoint of the tree now (also written to the directory)").set_defaults(
        func=cmd_checkpoint
    )
    a.add_parser("key", help="print the log's note verifier key (<name>+<id>+<key>)").set_defaults(func=cmd_key)
    audit_export.register(a)


def _ctx() -> Context:
    from authz.cli.admin import _ctx as admin_ctx  # builds the app context (migrates first)

    return admin_ctx()


def _store(ctx: Context) -> AuditTreeStore:
    assert ctx.audit_store is not None
    return ctx.audit_store


def _fail(message: str) -> int:
    print(f"authz: {message}", file=sys.stderr)
    return 1


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(_ctx())
    rows = store.list_audit(args.after, args.limit)
    names = store.resolve(r.subject for r in rows if r.subject) if args.resolve else {}
    for e in rows:
        line: dict[str, Any] = {
            "seq": e.seq,
            "at": e.at,
            "event": e.event,
            "outcome": e.outcome,
            "client_id": e.client_id,
            "subject": e.subject,
            "resource": e.resource,
            "reason": e.reason,
            "detail": e.detail,
        }
        if args.resolve and e.subject:
            line["subject_resolved"] = names.get(e.subject)
        print(json.dumps(line))
    return 0


def cmd_verify(_args: argparse.Namespace) -> int:
    ctx = _ctx()
    assert ctx.checkpointer is not None
    outside = CheckpointDir(ctx.settings.checkpoint_dir).notes()
    report = verify_log(_store(ctx), [ctx.checkpointer.verifier], ctx.settings.log_origin, outside)
    for problem in report.problems:
        print(f"audit log: {problem}", file=sys.stderr)
    if not report.ok:
        return 1
    print(
        f"audit log intact: {report.records} records, tree of {report.tree_size} leaves, "
        f"{report.checkpoints} checkpoints verified (latest size {report.latest_checkpoint}); "
        f"{len(outside)} read from {ctx.settings.checkpoint_dir}"
    )
    if not outside:
        print("warning: no checkpoint outside the database yet: run `authz audit checkpoint`", file=sys.stderr)
    return 0


def cmd_prove(args: argparse.Namespace) -> int:
    ctx = _ctx()
    store = _store(ctx)
    rows = store.list_audit(args.seq - 1, 1)
    if not rows or rows[0].seq != args.seq:
        return _fail(f"no audit record with seq {args.seq}: see `authz audit list`")
    record = rows[0]
    if record.leaf_index is None:
        return _fail(f"record {args.seq} predates the Merkle tree (only the hash chain covers it)")
    assert ctx.checkpointer is not None
    notes = [c for c in store.checkpoints() if c.size > record.leaf_index]
    if not notes:
        ctx.checkpointer.sign()
        notes = [c for c in store.checkpoints() if c.size > record.leaf_index]
    cp = notes[-1]
    proof = store.inclusion(record.leaf_index, cp.size)
    sys.stdout.write(format_proof(record.leaf_index, proof, cp.note, extra=record_line(record)))
    return 0


def cmd_checkpoint(_args: argparse.Namespace) -> int:
    ctx = _ctx()
    assert ctx.checkpointer is not None
    cp = ctx.checkpointer.sign()
    if cp is None:
        print("the audit tree is empty: nothing to sign")
        return 0
    print(f"checkpoint signed: {cp.origin} size {cp.size}; written to {ctx.settings.checkpoint_dir}")
    return 0


def cmd_key(_args: argparse.Namespace) -> int:
    ctx = _ctx()
    assert ctx.checkpointer is not None
    print(ctx.checkpointer.verifier.encode())
    return 0
