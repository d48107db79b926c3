"""The regulator export: one tar bundle of audit records that verifies offline (AI Act Art. 12/19/21).

Members: ``manifest.json`` (system, period, request reference, counts, log origin, tree size and
root, SHA-256 of every other member), ``manifest.sig`` (a signed note by the log key over the
manifest's SHA-256), ``records.jsonl`` (each line the RFC 8785 record a Merkle leaf hashes),
``proofs/boundary.json`` and ``proofs/withheld.json`` (the range proof: with the records, these
hashes give the signed root, which proves every record's inclusion at its index at once; a record
of the range left out, another system's or purged by retention, appears only as its leaf hash),
``checkpoint.txt`` (the signed C2SP checkpoint), ``consistency.json`` (RFC 9162 proof from the
previous export's tree), ``keys/<name>.vkey``, ``schema/records.schema.json``,
``schema/data-dictionary.md``, ``README.txt`` and ``verify_bundle.py`` (the standalone verifier).

Why a range proof rather than one ``tlog-proof`` per record: for a million records that is 20
hashes each (640 MB); the range proof is O(log n) hashes and each record's ``PATH(m, D_n)`` is
derivable from it (``authz audit prove SEQ`` prints one).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from authz.audit import merkle
from authz.audit.checkpoints import Checkpointer
from authz.audit.store import AuditTreeStore, record_line
from authz.storage.models import AuditEvent
from authz.storage.models.audit import AuditTreeNode

FORMAT = "authz-audit-export/v1"


class ExportError(ValueError):
    """The export cannot be made as asked (nothing in the period, records purged, ...)."""


@dataclass(frozen=True)
class ExportRequest:
    at_from: int
    at_to: int
    system: str | None = None  # an agent id (or client id): only its records are exported in full
    request_ref: str = ""
    system_info: dict[str, Any] | None = None  # provider, deployer, purpose, risk class (compliance record)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _index_range(store: AuditTreeStore, req: ExportRequest, size: int) -> tuple[int, int]:
    """The contiguous leaf range from the first record at/after ``from`` to the last one before ``to``."""
    with store.sessions() as s:
        window = (AuditEvent.at >= req.at_from, AuditEvent.at < req.at_to, AuditEvent.leaf_index < size)
        lo, hi = s.execute(
            select(func.min(AuditEvent.leaf_index), func.max(AuditEvent.leaf_index)).where(*window)
        ).one()
    if lo is None or hi is None:
        raise ExportError(f"no audit record in the tree between {_iso(req.at_from)} and {_iso(req.at_to)}")
    return int(lo), int(hi) + 1


def _selected(row: Any, req: ExportRequest) -> bool:
    """In the period and (with ``system``) about that system; other records of the range are withheld."""
    if not req.at_from <= row.at < req.at_to:
        return False
    system = req.system
    if system is None:
        return True
    detail = row.detail or {}
    return bool(row.client_id == system or detail.get("agent") == system or row.resource == system)


def export_bundle(
    store: AuditTreeStore, checkpointer: Checkpointer, req: ExportRequest, out: Path, generator: str
) -> dict[str, Any]:
    """Write the bundle to ``out`` (a .tar); returns its manifest."""
    cp = checkpointer.sign()
    if cp is None:
        raise ExportError("the audit tree is empty: nothing to export")
    note = next(c.note for c in store.checkpoints() if c.size == cp.size)
    start, end = _index_range(store, req, cp.size)
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(AuditTreeNode.idx, AuditTreeNode.hash)
            .where(AuditTreeNode.level == 0, AuditTreeNode.idx >= start, AuditTreeNode.idx < end)
            .order_by(AuditTreeNode.idx)
        ).all()
    leaves = [bytes(h) for _, h in stored]
    if len(leaves) != end - start:
        raise ExportError("tree leaves are missing in the period: run `authz audit verify`")
    lines: list[bytes] = []
    exported: set[int] = set()
    counts: Counter[str] = Counter()
    for rows in store.iter_records(leaf_from=start, leaf_to=end):
        for row in rows:
            if not _selected(row, req):
                continue
            line = record_line(row)
            if merkle.leaf_hash(line) != leaves[row.leaf_index - start]:
                raise ExportError(f"record seq {row.seq} does not match its tree leaf: run `authz audit verify`")
            lines.append(line)
            exported.add(row.leaf_index)
            counts[row.event] += 1
    # leaves of the range not exported in full (other systems' records, records purged by retention)
    withheld = {str(i): b64(leaves[i - start]) for i in range(start, end) if i not in exported}
    getter = store.node_getter()
    boundary = {f"{lv}/{ix}": b64(getter(lv, ix)) for lv, ix in merkle.range_boundary(start, end, cp.size)}
    previous = store.last_export()
    prev_size, prev_root = previous if previous else (0, b"")
    if prev_size > cp.size:
        raise ExportError("the previous export covered a larger tree than the log has now: run `authz audit verify`")
    consistency = {
        "from_size": prev_size,
        "from_root": b64(prev_root),
        "to_size": cp.size,
        "to_root": b64(cp.root),
        "proof": [b64(h) for h in store.consistency(prev_size, cp.size)] if prev_size else [],
    }
    vkey = checkpointer.verifier
    files: dict[str, bytes] = {
        "records.jsonl": b"".join(line + b"\n" for line in lines),
        "proofs/boundary.json": _json(boundary),
        "proofs/withheld.json": _json(withheld),
        "checkpoint.txt": note.encode(),
        "consistency.json": _json(consistency),
        f"keys/{vkey.name.replace('/', '_')}.vkey": (vkey.encode() + "\n").encode(),
        "schema/records.schema.json": _asset("records.schema.json"),
        "schema/data-dictionary.md": _asset("data-dictionary.md"),
        "README.txt": _asset("export-README.txt"),
        "verify_bundle.py": _asset("bundle_verifier.py"),
    }
    manifest = {
        "format": FORMAT,
        "system": {"id": req.system, **(req.system_info or {})},
        "period": {"from": _iso(req.at_from), "to": _iso(req.at_to)},
        "request": req.request_ref,
        "generator": {"name": "authz", "version": generator, "generated_at": _iso(int(time.time()))},
        "log": {"origin": cp.origin, "tree_size": cp.size, "root": b64(cp.root), "range": [start, end]},
        "counts": {"records": len(lines), "withheld": len(withheld), "by_event": dict(sorted(counts.items()))},
        "previous_export": {"tree_size": prev_size, "root": b64(prev_root)} if prev_size else None,
        "members": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "notice": "Ready for AI Act Articles 12/19/26(6) record-keeping requests; not a conformity assessment.",
    }
    files["manifest.json"] = _json(manifest)
    files["manifest.sig"] = checkpointer.signer.sign(
        f"{FORMAT}\n{hashlib.sha256(files['manifest.json']).hexdigest()}\n"
    ).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w") as tar:
        first = ("manifest.json", "manifest.sig")
        for name in (*first, *sorted(n for n in files if n not in first)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    tmp.replace(out)
    return manifest


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"


def _asset(name: str) -> bytes:
    return resources.files("authz.audit").joinpath(name).read_bytes()
