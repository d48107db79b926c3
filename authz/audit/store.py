"""The audit log in SQL: records, hash chain, Merkle tree and pseudonyms written in one transaction.

One batch (the audit writer's buffer) is one transaction under one lock: subjects are replaced by
their pseudonyms (``subject_pseudonyms``, created on first sight), each record gets the next
``seq``, its chain hash (``authz.storage.chain``) and its leaf hash (RFC 9162 ``HASH(0x00 ||
RFC 8785 record)``), and the complete subtrees the batch finishes are inserted with it (one
``executemany`` per table; only the tree's right edge is read). The record a leaf hashes is
:func:`record_body`: exactly the line an export writes, so a verifier hashes lines as they are.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Select, Table, delete, func, insert, select, text, tuple_
from sqlalchemy.orm import Session, sessionmaker

from authz.audit import merkle
from authz.audit.canonical import canonical
from authz.storage.chain import GENESIS, record_hash
from authz.storage.db import is_postgres, make_sessionmaker
from authz.storage.models import AuditEvent
from authz.storage.models.audit import AuditCheckpoint, AuditTreeNode, SubjectPseudonym

AUDIT_LOCK_ID = 0x41_55_44_49_54  # "AUDIT": serialises appends across PostgreSQL replicas
RECORD_FIELDS = ("seq", "at", "event", "outcome", "client_id", "subject", "resource", "reason", "detail")
# detail values naming a person (or their address) are pseudonymised like the subject
PERSONAL_KEYS = frozenset({"ip", "username", "email", "owner", "owner_id", "user", "user_id", "sponsor", "acting_for"})


EVENTS = cast(Table, AuditEvent.__table__)
NODES = cast(Table, AuditTreeNode.__table__)
TILE = 4  # stored tree levels: 0 (leaves), 4, 8, ...; the levels between are recomputed (<= 8 reads)


def link_hash(prev_hash: str, leaf: bytes) -> str:
    """The chain link of a record in the tree: its leaf already covers its content."""
    return hashlib.sha256(f"{prev_hash}:{leaf.hex()}".encode("ascii")).hexdigest()


def record_body(row: Any) -> dict[str, Any]:
    source = row if isinstance(row, dict) else getattr(row, "_mapping", None)
    if source is not None:
        body = {name: source.get(name) for name in RECORD_FIELDS}
    else:  # an ORM object
        body = {name: getattr(row, name) for name in RECORD_FIELDS}
    body["detail"] = body["detail"] or {}
    return body


def record_line(row: Any) -> bytes:
    return canonical(record_body(row))


def raw_rows(conn: Connection, query: Select[Any]) -> list[Any]:
    """The driver's own row tuples (no SQLAlchemy row objects or result processing): for columns the
    drivers return as is (integers, strings, bytes), a million rows read several times faster."""
    result = conn.execute(query)
    cursor = result.cursor
    assert cursor is not None
    try:
        return list(cursor.fetchall())
    finally:
        result.close()


def new_pseudonym() -> str:
    return "ps_" + secrets.token_hex(12)


class AuditTreeStore:
    """Appends, reads and proves audit records. ``tree=False`` keeps only the chain (benchmarks)."""

    def __init__(self, engine: Engine, tree: bool = True) -> None:
        self.engine = engine
        self.tree = tree
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)

    # -- append --------------------------------------------------------------------------------
    def append_audit(self, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        with self.sessions.begin() as s:
            if is_postgres(self.engine):
                s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": AUDIT_LOCK_ID})
            else:  # SQLite: take the write lock before reading the head
                s.execute(text("UPDATE change_log SET seq = seq WHERE 1 = 0"))
            head = s.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
            seq, prev = (head[0], head[1]) if head else (0, GENESIS)
            names = self._pseudonyms(s, _personal_values(events))
            size = self._size(s) if self.tree else 0
            rows, leaves = [], []
            for i, event in enumerate(events):
                seq += 1
                row = {"detail": {}, **event, "seq": seq}
                if row.get("subject") is not None:
                    row["subject"] = names[row["subject"]]
                if PERSONAL_KEYS & row["detail"].keys():
                    row["detail"] = {
                        k: names[v] if k in PERSONAL_KEYS and isinstance(v, str) else v
                        for k, v in row["detail"].items()
                    }
                if self.tree:
                    line = record_line(row)
                    leaf = merkle.leaf_hash(line)
                    leaves.append(leaf)
                    h = link_hash(prev, leaf)
                    row.update(prev_hash=prev, hash=h, leaf_index=size + i, line=line)
                else:
                    h = record_hash(prev, row)
                    row.update(prev_hash=prev, hash=h, leaf_index=None, line=None)
                rows.append(row)
                prev = h
            conn = s.connection()
            conn.execute(EVENTS.insert(), rows)  # Core executemany: no ORM bulk machinery
            if self.tree:
                edge = self._edge(s, size)
                nodes = merkle.extend(size, leaves, lambda lv, ix: edge[(lv, ix)])
                conn.execute(
                    NODES.insert(),
                    [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes if lv % TILE == 0],
                )

    def _pseudonyms(self, s: Session, values: set[str]) -> dict[str, str]:
        if not values:
            return {}
        rows = s.execute(select(SubjectPseudonym.subject, SubjectPseudonym.pseudonym).where(
            SubjectPseudonym.subject.in_(values))).all()  # fmt: skip
        names: dict[str, str] = {str(a): str(b) for a, b in rows}
        missing = [v for v in values if v not in names]
        if missing:
            now = int(time.time())
            fresh = [{"subject": v, "pseudonym": new_pseudonym(), "created_at": now} for v in missing]
            s.execute(insert(SubjectPseudonym), fresh)
            names.update((str(r["subject"]), str(r["pseudonym"])) for r in fresh)
        return names

    # -- reads ---------------------------------------------------------------------------------
    def list_audit(self, after_seq: int = 0, limit: int = 100) -> Sequence[AuditEvent]:
        with self.sessions() as s:
            return s.scalars(
                select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq).limit(limit)
            ).all()

    def iter_records(self, batch: int = 20_000, **where: Any) -> Iterable[Sequence[Any]]:
        """Every record in ``seq`` order (optionally ``at_from``/``at_to``), ``batch`` rows at a time."""
        after = 0
        with self.engine.connect() as conn:
            while True:
                q = select(AuditEvent.__table__).where(AuditEvent.seq > after)
                if where.get("at_from") is not None:
                    q = q.where(AuditEvent.at >= where["at_from"])
                if where.get("at_to") is not None:
                    q = q.where(AuditEvent.at < where["at_to"])
                if where.get("leaf_from") is not None:
                    q = q.where(AuditEvent.leaf_index >= where["leaf_from"], AuditEvent.leaf_index < where["leaf_to"])
                rows = conn.execute(q.order_by(AuditEvent.seq).limit(batch)).all()
                if not rows:
                    return
                yield rows
                after = rows[-1].seq

    def iter_lines(
        self, start: int, end: int, batch: int = 50_000
    ) -> Iterable[list[tuple[int, int, str, Any, Any, bytes]]]:
        """(leaf_index, at, event, client_id, resource, line) of the records with leaves ``[start, end)``,
        in leaf order: ``line`` is the stored RFC 8785 record (serialised here for records written
        before lines were stored). No JSON is decoded for a record whose line is stored."""
        cols = (EVENTS.c.leaf_index, EVENTS.c.at, EVENTS.c.event, EVENTS.c.client_id, EVENTS.c.resource, EVENTS.c.line)
        with self.engine.connect() as conn:
            lo = start
            while lo < end:
                hi = min(end, lo + batch)
                q = select(*cols).where(EVENTS.c.leaf_index >= lo, EVENTS.c.leaf_index < hi)
                rows = raw_rows(conn, q.order_by(EVENTS.c.leaf_index))
                if any(r[5] is None for r in rows):  # written before lines were stored
                    full = conn.execute(select(EVENTS).where(EVENTS.c.leaf_index >= lo, EVENTS.c.leaf_index < hi))
                    lines = {r.leaf_index: record_line(r) for r in full}
                    rows = [r if r[5] is not None else (*r[:5], lines[r[0]]) for r in rows]
                yield cast(list[tuple[int, int, str, Any, Any, bytes]], rows)
                lo = hi

    def resolve(self, pseudonyms: Iterable[str]) -> dict[str, str]:
        """pseudonym -> subject, for the ones still mapped (erased people are not)."""
        with self.sessions() as s:
            rows = s.execute(select(SubjectPseudonym.pseudonym, SubjectPseudonym.subject).where(
                SubjectPseudonym.pseudonym.in_(set(pseudonyms)))).all()  # fmt: skip
        return {str(a): str(b) for a, b in rows}

    def pseudonym_of(self, subject: str) -> str | None:
        with self.sessions() as s:
            return s.scalar(select(SubjectPseudonym.pseudonym).where(SubjectPseudonym.subject == subject))

    def forget(self, values: Iterable[str]) -> int:
        """Delete the mapping of these subjects/values (erasure): their pseudonyms become unlinkable."""
        with self.sessions.begin() as s:
            result = s.execute(delete(SubjectPseudonym).where(SubjectPseudonym.subject.in_(set(values))))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- tree ----------------------------------------------------------------------------------
    @staticmethod
    def _size(s: Session) -> int:
        top = s.scalar(select(func.max(AuditTreeNode.idx)).where(AuditTreeNode.level == 0))
        return 0 if top is None else int(top) + 1

    @staticmethod
    def _nodes(s: Session, keys: Sequence[merkle.Node]) -> dict[merkle.Node, bytes]:
        if not keys:
            return {}
        cond = tuple_(AuditTreeNode.level, AuditTreeNode.idx).in_(list(keys))
        rows = s.execute(select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(cond)).all()
        found = {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            raise LookupError(f"audit tree nodes missing: {missing[:3]}")
        return found

    def _fetch(self, s: Session, want: Sequence[merkle.Node]) -> dict[merkle.Node, bytes]:
        """The nodes ``want`` in one read: each is stored (level a multiple of TILE) or hashed from the
        stored nodes below it (at most 2**(TILE-1) of them)."""
        spans = {(lv, ix): (lv - lv % TILE, ix << (lv % TILE), (ix + 1) << (lv % TILE)) for lv, ix in want}
        found = self._nodes(s, sorted({(base, j) for base, lo, hi in spans.values() for j in range(lo, hi)}))
        out: dict[merkle.Node, bytes] = {}
        for key, (base, lo, hi) in spans.items():
            row = [found[(base, j)] for j in range(lo, hi)]
            while len(row) > 1:
                row = [merkle.node_hash(row[k], row[k + 1]) for k in range(0, len(row), 2)]
            out[key] = row[0]
        return out

    def _edge(self, s: Session, size: int) -> dict[merkle.Node, bytes]:
        """The right edge of the tree (``merkle.frontier``), what appending and the root need."""
        return self._fetch(s, merkle.frontier(size))

    def _run(self, compute: Callable[[merkle.Getter], Any]) -> Any:
        """Run a proof computation twice: once to learn which nodes it reads, once on them (one query)."""
        asked: list[merkle.Node] = []

        def record(level: int, idx: int) -> bytes:
            asked.append((level, idx))
            return b"\x00" * 32

        compute(record)  # the nodes a proof reads depend only on the sizes, never on the hashes
        with self.sessions() as s:
            nodes = self._fetch(s, asked)
        return compute(lambda lv, ix: nodes[(lv, ix)])

    def tree_size(self) -> int:
        with self.sessions() as s:
            return self._size(s)

    def node_getter(self) -> merkle.Getter:
        """A getter with its own short sessions (a few lookups outside a transaction)."""

        def get(level: int, idx: int) -> bytes:
            with self.sessions() as s:
                return self._fetch(s, [(level, idx)])[(level, idx)]

        return get

    def last_export(self) -> tuple[int, bytes] | None:
        """(tree size, root) of the latest ``audit.exported`` record, if any."""
        with self.sessions() as s:
            detail = s.scalar(
                select(AuditEvent.detail).where(AuditEvent.event == "audit.exported").order_by(AuditEvent.seq.desc())
            )
        if not detail:
            return None
        return int(detail["tree_size"]), base64.b64decode(detail["root"])

    def root(self, size: int) -> bytes:
        return bytes(self._run(lambda get: merkle.root(size, get)))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return list(self._run(lambda get: merkle.inclusion_proof(index, size, get)))

    def consistency(self, old: int, new: int) -> list[bytes]:
        return list(self._run(lambda get: merkle.consistency_proof(old, new, get)))

    def all_nodes(self) -> dict[merkle.Node, bytes]:
        """Every stored node (levels 0, TILE, 2 * TILE, ...)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash)).all()
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}

    def leaves(self) -> list[bytes]:
        """Every leaf hash in index order (raises when one is missing)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(AuditTreeNode.idx, AuditTreeNode.hash)
                .where(AuditTreeNode.level == 0)
                .order_by(AuditTreeNode.idx)
            ).all()
        out = []
        for expected, (idx, h) in enumerate(rows):
            if idx != expected:
                raise LookupError(f"audit tree leaf {expected} is missing")
            out.append(bytes(h))
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self.sessions.begin() as s:
            if s.get(AuditCheckpoint, size) is None:
                s.add(AuditCheckpoint(size=size, root=root, note=note, at=int(time.time())))

    def latest_checkpoint(self) -> AuditCheckpoint | None:
        with self.sessions() as s:
            return s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)).first()

    def checkpoints(self) -> list[AuditCheckpoint]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)))


def _personal_values(events: Sequence[dict[str, Any]]) -> set[str]:
    values: set[str] = set()
    for event in events:
        if event.get("subject") is not None:
            values.add(event["subject"])
        detail = event.get("detail") or {}
        values.update(v for k, v in detail.items() if k in PERSONAL_KEYS and isinstance(v, str))
    return values
