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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from authz.audit import merkle
from authz.audit.checkpoints import Checkpointer
from authz.audit.store import AuditTreeStore, raw_rows
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


def _selected(at: int, client_id: Any, resource: Any, line: bytes, req: ExportRequest) -> bool:
    """In the period and (with ``system``) about that system; other records of the range are withheld."""
    if not req.at_from <= at < req.at_to:
        return False
    system = req.system
    if system is None or client_id == system or resource == system:
        return True
    if system.encode() not in line:  # the line holds every field: most records need no decoding
        return False
    return bool(json.loads(line)["detail"].get("agent") == system)


@dataclass
class _Spooled:
    """``records.jsonl`` written to a spool file: its line count and SHA-256, what was left out."""

    count: int = 0
    sha256: str = ""
    withheld: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


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
        window = (AuditTreeNode.level == 0, AuditTreeNode.idx >= start, AuditTreeNode.idx < end)
        stored = raw_rows(conn, select(AuditTreeNode.hash).where(*window).order_by(AuditTreeNode.idx))
    leaves = [bytes(h) for (h,) in stored]
    if len(leaves) != end - start:
        raise ExportError("tree leaves are missing in the period: run `authz audit verify`")
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
    out.parent.mkdir(parents=True, exist_ok=True)
    spool = out.with_name(f".{out.name}.records")
    try:
        written = _spool_records(store, req, start, leaves, spool)
        vkey = checkpointer.verifier
        files: dict[str, bytes] = {
            "proofs/boundary.json": _json(boundary),
            "proofs/withheld.json": _json(written.withheld),
            "checkpoint.txt": note.encode(),
            "consistency.json": _json(consistency),
            f"keys/{vkey.name.replace('/', '_')}.vkey": (vkey.encode() + "\n").encode(),
            "schema/records.schema.json": _asset("records.schema.json"),
            "schema/data-dictionary.md": _asset("data-dictionary.md"),
            "README.txt": _asset("export-README.txt"),
            "verify_bundle.py": _asset("bundle_verifier.py"),
        }
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        digests["records.jsonl"] = written.sha256
        manifest = {
            "format": FORMAT,
            "system": {"id": req.system, **(req.system_info or {})},
            "period": {"from": _iso(req.at_from), "to": _iso(req.at_to)},
            "request": req.request_ref,
            "generator": {"name": "authz", "version": generator, "generated_at": _iso(int(time.time()))},
            "log": {"origin": cp.origin, "tree_size": cp.size, "root": b64(cp.root), "range": [start, end]},
            "counts": {
                "records": written.count,
                "withheld": len(written.withheld),
                "by_event": dict(sorted(written.counts.items())),
            },
            "previous_export": {"tree_size": prev_size, "root": b64(prev_root)} if prev_size else None,
            "members": dict(sorted(digests.items())),
            "notice": "Ready for AI Act Articles 12/19/26(6) record-keeping requests; not a conformity assessment.",
        }
        files["manifest.json"] = _json(manifest)
        files["manifest.sig"] = checkpointer.signer.sign(
            f"{FORMAT}\n{hashlib.sha256(files['manifest.json']).hexdigest()}\n"
        ).encode()
        _write_tar(out, files, spool)
    finally:
        spool.unlink(missing_ok=True)
    return manifest


def _spool_records(store: AuditTreeStore, req: ExportRequest, start: int, leaves: list[bytes], spool: Path) -> _Spooled:
    """Copy the selected records' stored RFC 8785 lines to ``spool``, hashing as it goes; each line
    is checked against its tree leaf. Leaves of the range not exported are listed as withheld."""
    end = start + len(leaves)
    written, digest, sha256 = _Spooled(), hashlib.sha256(), hashlib.sha256
    withheld, counts = written.withheld, written.counts
    expect = start
    with open(spool, "wb") as fh:
        for rows in store.iter_lines(start, end):
            chunk: list[bytes] = []
            for index, at, event, client_id, resource, line in rows:
                for gap in range(expect, index):  # purged by retention: only the leaf hash is left
                    withheld[str(gap)] = b64(leaves[gap - start])
                expect = index + 1
                if not _selected(at, client_id, resource, line, req):
                    withheld[str(index)] = b64(leaves[index - start])
                    continue
                if sha256(b"\x00" + line).digest() != leaves[index - start]:
                    raise ExportError(
                        f"the record at leaf {index} does not match its tree leaf: run `authz audit verify`"
                    )
                chunk.append(line)
                counts[event] += 1
            if chunk:
                written.count += len(chunk)
                chunk.append(b"")
                data = b"\n".join(chunk)
                digest.update(data)
                fh.write(data)
        for gap in range(expect, end):
            withheld[str(gap)] = b64(leaves[gap - start])
    written.sha256 = digest.hexdigest()
    return written


def _write_tar(out: Path, files: dict[str, bytes], spool: Path) -> None:
    """The manifest and its signature first, then the members by name; records copied from the spool."""
    tmp = out.with_name(f".{out.name}.tmp")
    now = int(time.time())
    first = ("manifest.json", "manifest.sig")
    with tarfile.open(tmp, "w") as tar:
        for name in (*first, *sorted(n for n in [*files, "records.jsonl"] if n not in first)):
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = now, 0o644
            if name == "records.jsonl":
                info.size = spool.stat().st_size
                with open(spool, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                info.size = len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
    tmp.replace(out)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"


def _asset(name: str) -> bytes:
    return resources.files("authz.audit").joinpath(name).read_bytes()
