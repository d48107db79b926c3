"""Full verification of the audit log: chain, leaves, tree, and every signed checkpoint.

What each check catches (the checkpoints from the directory outside the database are the anchor):

* a record edited in place: its chain hash and its leaf hash no longer match (and its stored
  RFC 8785 line, which exports copy, no longer matches its columns, or the leaf if the line was edited);
* a record deleted: the next record's ``prev_hash`` breaks, and a leaf has no record;
* the tail truncated (records, nodes and database checkpoints): the tree is smaller than a
  checkpoint signed earlier;
* everything rewritten consistently (records, chain, tree, database checkpoints): the roots no
  longer match the checkpoints signed with the log key, which the database does not hold.

Records purged by retention are expected to be missing below the ``audit.purged`` watermark (the
purge record carries the last purged chain hash, so the chain restarts verifiably).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authz.audit import merkle
from authz.audit.note import NoteError, Verifier, verify_checkpoint
from authz.audit.store import AuditTreeStore, link_hash, record_line
from authz.storage.chain import GENESIS, record_hash


@dataclass
class Report:
    records: int = 0
    tree_size: int = 0
    checkpoints: int = 0
    latest_checkpoint: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(store: AuditTreeStore, verifiers: list[Verifier], origin: str, outside: list[str]) -> Report:
    """Check everything; ``outside`` = the checkpoint notes held outside the database."""
    report = Report()
    nodes = store.all_nodes()
    level0 = {ix: h for (lv, ix), h in nodes.items() if lv == 0}
    size = max(level0, default=-1) + 1
    report.tree_size = size
    gaps = [i for i in range(size) if i not in level0]
    if gaps:
        report.problems.append(f"tree leaves missing: {_few(gaps)}")
    seen: set[int] = set()
    prev: str | None = None
    first_prev: str | None = None
    purged_through, purged_last_hash = -1, GENESIS
    for rows in store.iter_records():
        for row in rows:
            r: dict[str, Any] = dict(row._mapping)
            report.records += 1
            if prev is None:
                first_prev = r["prev_hash"]
            elif r["prev_hash"] != prev:
                report.problems.append(f"hash chain broken before seq {r['seq']} (a record was removed or reordered)")
            index = r.get("leaf_index")
            if index is None:  # written before the tree: the chain hash covers the content
                if record_hash(r["prev_hash"], r) != r["hash"]:
                    report.problems.append(f"record seq {r['seq']} was altered (chain hash)")
            else:
                seen.add(index)
                line = record_line(r)
                if r.get("line") is not None and bytes(r["line"]) != line:
                    report.problems.append(f"record seq {r['seq']} differs from its stored line (exports copy it)")
                leaf = merkle.leaf_hash(line)
                if link_hash(r["prev_hash"], leaf) != r["hash"]:
                    report.problems.append(f"record seq {r['seq']} was altered (chain hash)")
                if level0.get(index) != leaf:
                    report.problems.append(f"record seq {r['seq']} does not match its tree leaf {index}")
            prev = r["hash"]
            if r["event"] == "audit.purged":
                purged_through = max(purged_through, int(r["detail"].get("through_index", -1)))
                purged_last_hash = str(r["detail"].get("last_hash", GENESIS))
    if first_prev is not None and first_prev not in (GENESIS, purged_last_hash):
        report.problems.append("the first record does not follow the genesis or the last purged record")
    orphans = [i for i in level0 if i not in seen and i > purged_through]
    if orphans:
        report.problems.append(f"tree leaves without their record (records deleted): {_few(sorted(orphans))}")
    tree = merkle.MemoryTree([level0.get(i, b"") for i in range(size)]) if not gaps else None
    if tree is not None:
        bad = [k for k, h in nodes.items() if k[0] > 0 and _node(tree, k) != h]
        if bad:
            report.problems.append(f"stored tree nodes differ from the leaves: {_few(sorted(bad))}")
    inside = [c.note for c in store.checkpoints()]
    for where, notes in (("outside the database", outside), ("in the database", inside)):
        for note in notes:
            report.checkpoints += 1
            try:
                cp = verify_checkpoint(note, verifiers, origin)
            except NoteError as exc:
                report.problems.append(f"a checkpoint {where} does not verify: {exc}")
                continue
            report.latest_checkpoint = max(report.latest_checkpoint or 0, cp.size)
            if cp.size > size:
                report.problems.append(
                    f"checkpoint {where} signed a tree of {cp.size} records; the tree has only {size} (truncated)"
                )
            elif tree is not None and tree.root(cp.size) != cp.root:
                report.problems.append(f"the tree does not match the checkpoint of size {cp.size} {where} (rewritten)")
    return report


def first_broken(records: Iterable[Mapping[str, Any]], prev_hash: str = GENESIS) -> int | None:
    """The ``seq`` of the first record whose chain link does not verify, or None: a record in the
    tree links its leaf (``link_hash``), one written before the tree its content (``record_hash``).
    Records need the fields of :data:`authz.audit.store.RECORD_FIELDS` plus ``prev_hash`` and ``hash``."""
    for r in records:
        h = r["hash"]
        if r["prev_hash"] != prev_hash or (
            h != link_hash(prev_hash, merkle.leaf_hash(record_line(dict(r)))) and h != record_hash(prev_hash, r)
        ):
            return int(r["seq"])
        prev_hash = h
    return None


def _node(tree: merkle.MemoryTree, key: merkle.Node) -> bytes | None:
    level, idx = key
    row = tree.levels[level] if level < len(tree.levels) else []
    return row[idx] if idx < len(row) else None


def _few(items: list[Any]) -> str:
    return ", ".join(map(str, items[:5])) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
