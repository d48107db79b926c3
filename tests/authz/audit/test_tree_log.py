"""The verifiable audit log on SQLite and PostgreSQL: tree written with the records, signed checkpoints
outside the database, and every kind of tampering found by ``verify_log`` against them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authz.audit import merkle
from authz.audit.checkpoints import CheckpointDir, Checkpointer, log_signer
from authz.audit.log import AuditLog
from authz.audit.note import Checkpoint, Signer, format_proof, parse_proof, verify_checkpoint
from authz.audit.store import AuditTreeStore, link_hash, record_line
from authz.audit.verify import verify_log
from authz.core.crypto import Keyring
from authz.storage.models import AuditEvent
from authz.storage.models.audit import AuditCheckpoint, AuditTreeNode, SubjectPseudonym
from authz.storage.sql import SqlStore

ORIGIN = "as.example/audit"


class Log:
    def __init__(self, store: SqlStore, directory: Path) -> None:
        self.tree = AuditTreeStore(store.engine)
        self.audit = AuditLog(self.tree)
        self.dir = CheckpointDir(directory)
        self.checkpointer = Checkpointer(self.tree, log_signer(Keyring(b"k" * 32), ORIGIN), self.dir, every=10)
        self.audit.after_flush = self.checkpointer.appended

    def write(self, n: int, start: int = 0) -> None:
        """One batch of ``n`` records, as the audit writer's flush appends them."""
        self.tree.append_audit(
            [
                {"at": 1_700_000_000 + i, "event": "token.issued", "outcome": "success", "client_id": f"agent-{i % 3}",
                 "subject": f"user-{i % 4}", "resource": None, "reason": None, "detail": {"jti": f"j{i}"}}
                for i in range(start, start + n)
            ]
        )  # fmt: skip
        self.checkpointer.appended(n)

    def verify(self) -> list[str]:
        return verify_log(self.tree, [self.checkpointer.verifier], ORIGIN, self.dir.notes()).problems

    def sql(self, statement: sa.Executable) -> None:
        with self.tree.engine.begin() as conn:
            conn.execute(statement)


@pytest.fixture
def log(store: SqlStore, tmp_path: Path) -> Log:
    log = Log(store, tmp_path / "checkpoints")
    log.write(25)  # checkpoints of 25 leaves (every=10 fires once per flush of >= 10)
    return log


def test_records_get_leaves_proofs_and_checkpoints(log: Log) -> None:
    assert log.tree.tree_size() == 25
    assert [c.size for c in log.tree.checkpoints()] == [25]
    assert (log.dir.path / "checkpoint").read_text() == log.tree.checkpoints()[0].note
    cp = verify_checkpoint((log.dir.path / "checkpoint").read_text(), [log.checkpointer.verifier], ORIGIN)
    assert cp.size == 25
    for record in log.tree.list_audit(0, 100):
        assert record.leaf_index is not None
        proof = log.tree.inclusion(record.leaf_index, 25)
        assert merkle.verify_inclusion(merkle.leaf_hash(record_line(record)), record.leaf_index, 25, proof, cp.root)
    assert log.verify() == []


def test_appends_extend_the_tree_consistently_with_earlier_checkpoints(log: Log) -> None:
    log.write(17, start=25)
    sizes = [c.size for c in log.tree.checkpoints()]
    assert sizes == [25, 42]
    old, new = log.tree.checkpoints()
    assert merkle.verify_consistency(25, 42, old.root, new.root, log.tree.consistency(25, 42))
    assert log.verify() == []


def test_tampering_with_one_record_is_found(log: Log) -> None:
    log.sql(sa.update(AuditEvent).where(AuditEvent.seq == 7).values(client_id="someone-else"))
    problems = log.verify()
    assert any("seq 7 was altered" in p for p in problems)
    assert any("seq 7 does not match its tree leaf" in p for p in problems)


def test_tampering_that_fixes_the_chain_is_still_found_by_the_leaf(log: Log) -> None:
    """Editing a record and recomputing its chain hash and every later one leaves the leaf mismatched."""
    rows = [dict(r._mapping) for r in log.tree.engine.connect().execute(sa.select(AuditEvent.__table__))]
    rows.sort(key=lambda r: r["seq"])
    rows[4]["reason"] = "edited"
    prev = rows[0]["prev_hash"]
    with log.tree.engine.begin() as conn:
        for r in rows:
            line = record_line(r)  # the stored line rewritten too: only the tree leaf still disagrees
            h = link_hash(prev, merkle.leaf_hash(line))
            conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == r["seq"]).values(
                reason=r["reason"], prev_hash=prev, hash=h, line=line))  # fmt: skip
            prev = h
    assert log.verify() == [f"record seq {rows[4]['seq']} does not match its tree leaf 4"]


def test_deleting_one_record_is_found(log: Log) -> None:
    log.sql(sa.delete(AuditEvent).where(AuditEvent.seq == 12))
    problems = log.verify()
    assert any("hash chain broken before seq 13" in p for p in problems)
    assert any("without their record" in p and "11" in p for p in problems)


def test_truncating_the_tail_everywhere_in_the_database_is_found_by_the_checkpoint_outside(log: Log) -> None:
    log.sql(sa.delete(AuditEvent).where(AuditEvent.seq > 20))
    log.sql(sa.delete(AuditTreeNode).where(AuditTreeNode.idx >= 0))  # then rebuild a consistent 20-leaf tree
    log.sql(sa.delete(AuditCheckpoint))
    leaves = [merkle.leaf_hash(record_line(r)) for r in log.tree.list_audit(0, 100)]
    with log.tree.engine.begin() as conn:
        nodes = merkle.extend(0, leaves, lambda lv, ix: b"")
        conn.execute(sa.insert(AuditTreeNode), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
    problems = log.verify()
    assert problems == ["checkpoint outside the database signed a tree of 25 records; the tree has only 20 (truncated)"]


@pytest.mark.requirement("euaiact:verifiable-logs")
def test_rewriting_the_whole_table_and_tree_is_found(log: Log, store: SqlStore) -> None:
    """An attacker with database access rewrites history with our own code and signs with their own key."""
    for model in (AuditEvent, AuditTreeNode, AuditCheckpoint):
        log.sql(sa.delete(model))
    forged = AuditTreeStore(store.engine)
    forged.append_audit(
        [{"at": 1, "event": "token.issued", "outcome": "success", "detail": {"i": i}} for i in range(25)]
    )
    fake = Signer(ORIGIN, Ed25519PrivateKey.generate().private_bytes_raw())
    root = forged.root(25)
    forged.save_checkpoint(25, root, fake.sign(Checkpoint(ORIGIN, 25, root).text()))
    problems = log.verify()
    assert "the tree does not match the checkpoint of size 25 outside the database (rewritten)" in problems
    assert any("in the database does not verify" in p for p in problems)


@pytest.mark.requirement("c2sp:tlog-checkpoint-consistent")
def test_the_checkpointer_refuses_to_sign_an_inconsistent_tree(log: Log) -> None:
    log.sql(sa.update(AuditTreeNode).where(AuditTreeNode.level == 0, AuditTreeNode.idx == 3).values(hash=b"\x00" * 32))
    log.sql(sa.delete(AuditTreeNode).where(AuditTreeNode.level > 0))
    leaves = log.tree.leaves()
    with log.tree.engine.begin() as conn:
        nodes = [n for n in merkle.extend(0, leaves, lambda lv, ix: b"") if n[0] > 0]
        conn.execute(sa.insert(AuditTreeNode), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
    log.audit.record("one.more")
    log.audit.flush()
    with pytest.raises(RuntimeError, match="inconsistent with the signed checkpoint of size 25"):
        log.checkpointer.sign()
    assert [c.size for c in log.tree.checkpoints()] == [25]


def test_subjects_are_pseudonymised_and_forgetting_keeps_every_proof(log: Log) -> None:
    records = log.tree.list_audit(0, 100)
    assert {r.subject for r in records}.isdisjoint({f"user-{i}" for i in range(4)})
    alias = log.tree.pseudonym_of("user-1")
    assert alias is not None and alias.startswith("ps_")
    assert sum(r.subject == alias for r in records) == 6
    assert log.tree.resolve([alias]) == {alias: "user-1"}
    assert log.tree.forget(["user-1"]) == 1
    assert log.tree.resolve([alias]) == {}
    with log.tree.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(SubjectPseudonym)) == 3
    assert log.verify() == []


def test_a_tlog_proof_round_trips(log: Log) -> None:
    record = log.tree.list_audit(4, 1)[0]
    cp = log.tree.checkpoints()[-1]
    text = format_proof(record.leaf_index or 0, log.tree.inclusion(4, 25), cp.note, extra=record_line(record))
    index, proof, note, extra = parse_proof(text)
    assert index == 4 and extra == record_line(record) and note == cp.note
    checkpoint = verify_checkpoint(note, [log.checkpointer.verifier], ORIGIN)
    assert merkle.verify_inclusion(merkle.leaf_hash(extra), index, checkpoint.size, proof, checkpoint.root)


def test_refusal_floods_are_folded_never_dropped(store: SqlStore, tmp_path: Path) -> None:
    log = Log(store, tmp_path)
    log.audit = AuditLog(log.tree, flush_interval=3600)  # the writer thread runs; only flush() writes
    log.audit.start()
    for _ in range(40):
        log.audit.refusal("token.refused", client_id="agent-x", reason="invalid_client", ip="10.0.0.1")
    log.audit.refusal("token.refused", client_id="agent-y", reason="invalid_scope")
    log.audit.flush()
    log.audit.stop()
    rows = [(r.client_id, r.detail.get("count")) for r in log.tree.list_audit(0, 100)]
    assert sorted(rows, key=str) == sorted([("agent-x", None), ("agent-x", 39), ("agent-y", None)], key=str)


def test_checkpoint_files_are_outside_the_database(log: Log) -> None:
    files = sorted(os.listdir(log.dir.path / "checkpoints"))
    assert files == ["25"]


def test_first_broken_follows_tree_links_and_chain_links(log: Log) -> None:
    """The console's chain check: records in the tree link their leaf, records outside it their content."""
    from authz.audit.verify import first_broken

    AuditTreeStore(log.tree.engine, tree=False).append_audit([{"at": 5, "event": "legacy", "outcome": "success"}])
    log.write(3, start=25)
    with log.tree.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(AuditEvent.__table__).order_by(AuditEvent.seq))]
    assert len(rows) == 29 and rows[25]["leaf_index"] is None and first_broken(rows) is None
    assert first_broken(rows[10:], rows[9]["hash"]) is None
    for victim in (3, 25, 27):
        edited = [dict(r) for r in rows]
        edited[victim]["reason"] = "edited"
        assert first_broken(edited) == rows[victim]["seq"]
