"""Regulator export bundles and retention: the bundle verifies offline (also with the shipped standalone
script, run as a separate process), every change to it is refused, consecutive exports are consistent,
and a purge keeps every proof valid."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from authz.audit import bundle_verifier
from authz.audit.export import ExportError, ExportRequest, export_bundle
from authz.audit.note import format_proof
from authz.audit.retention import PurgeError, purge_before
from authz.audit.store import record_line
from authz.storage.sql import SqlStore
from tests.authz.audit.test_tree_log import Log

T0 = 1_700_000_000  # Log.write stamps record i at T0 + i


@pytest.fixture
def log(store: SqlStore, tmp_path: Path) -> Log:
    log = Log(store, tmp_path / "checkpoints")
    log.write(40)
    return log


def export(log: Log, out: Path, start: int, end: int, system: str | None = None) -> dict[str, object]:
    manifest = export_bundle(log.tree, log.checkpointer, ExportRequest(T0 + start, T0 + end, system, "REQ-1"), out, "t")
    tree = manifest["log"]
    assert isinstance(tree, dict)
    log.audit.operator_change("audit", "exported", actor="test", tree_size=tree["tree_size"], root=tree["root"])
    log.audit.flush()
    return manifest


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def rewrite(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.requirement("euaiact:regulator-export")
def test_a_bundle_verifies_offline_with_the_standalone_script(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "b1.tar"
    manifest = export(log, out, 10, 30)
    assert manifest["counts"] == {"records": 20, "withheld": 0, "by_event": {"token.issued": 20}}
    key = log.checkpointer.verifier.encode()
    assert bundle_verifier.verify_bundle(str(out), key)[1] == 20
    files = members(out)
    assert set(files) >= {"manifest.json", "manifest.sig", "records.jsonl", "checkpoint.txt", "consistency.json",
                          "proofs/boundary.json", "proofs/withheld.json", "schema/records.schema.json",
                          "schema/data-dictionary.md", "README.txt", "verify_bundle.py"}  # fmt: skip
    script = tmp_path / "verify_bundle.py"
    script.write_bytes(files["verify_bundle.py"])
    done = subprocess.run([sys.executable, str(script), str(out), "--key", key], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("OK: 20 records"), done.stderr
    lines = files["records.jsonl"].splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(11, 31))


def test_one_record_proof_verifies_with_the_standalone_script(log: Log, tmp_path: Path) -> None:
    record = log.tree.list_audit(6, 1)[0]
    cp = log.tree.checkpoints()[-1]
    proof = tmp_path / "r7.tlog-proof"
    proof.write_text(format_proof(6, log.tree.inclusion(6, cp.size), cp.note, extra=record_line(record)))
    script = Path(bundle_verifier.__file__)
    key = log.checkpointer.verifier.encode()
    done = subprocess.run(
        [sys.executable, str(script), "--proof", str(proof), "--key", key], capture_output=True, text=True
    )
    assert done.returncode == 0 and "index 6 is in the signed tree of 40" in done.stdout, done.stderr
    proof.write_text(proof.read_text().replace("index 6", "index 5"))
    done = subprocess.run(
        [sys.executable, str(script), "--proof", str(proof), "--key", key], capture_output=True, text=True
    )
    assert done.returncode == 1 and "FAILED" in done.stderr


def test_a_system_export_withholds_other_records_as_hashes(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "agent-1.tar"
    manifest = export(log, out, 0, 40, system="agent-1")
    assert manifest["counts"]["records"] == 13 and manifest["counts"]["withheld"] == 27  # type: ignore[index]
    assert b"agent-0" not in members(out)["records.jsonl"]
    assert bundle_verifier.verify_bundle(str(out), log.checkpointer.verifier.encode())[1] == 13


def test_every_change_to_a_bundle_is_refused(log: Log, tmp_path: Path) -> None:
    out = tmp_path / "b.tar"
    export(log, out, 0, 20)
    key = log.checkpointer.verifier.encode()
    files = members(out)
    forged = files["records.jsonl"].replace(b'"agent-1"', b'"agent-9"', 1)
    rewrite(out, {**files, "records.jsonl": forged})
    with pytest.raises(bundle_verifier.Failed, match=r"records\.jsonl: SHA-256 differs"):
        bundle_verifier.verify_bundle(str(out), key)
    manifest = json.loads(files["manifest.json"])
    manifest["members"]["records.jsonl"] = __import__("hashlib").sha256(forged).hexdigest()
    rewrite(out, {**files, "records.jsonl": forged, "manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(bundle_verifier.Failed, match=r"manifest\.sig does not sign it"):
        bundle_verifier.verify_bundle(str(out), key)


def test_consecutive_exports_carry_a_consistency_proof(log: Log, tmp_path: Path) -> None:
    first = export(log, tmp_path / "1.tar", 0, 10)
    log.write(9, start=40)
    second = export(log, tmp_path / "2.tar", 10, 49)
    assert second["previous_export"] == {"tree_size": first["log"]["tree_size"], "root": first["log"]["root"]}  # type: ignore[index]
    consistency = json.loads(members(tmp_path / "2.tar")["consistency.json"])
    assert consistency["from_size"] == 40 and consistency["to_size"] == 50 and consistency["proof"]
    assert bundle_verifier.verify_bundle(str(tmp_path / "2.tar"), log.checkpointer.verifier.encode())[1] == 39


def test_an_empty_period_is_a_clear_error(log: Log, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no audit record in the tree between"):
        export_bundle(log.tree, log.checkpointer, ExportRequest(0, 10), tmp_path / "x.tar", "t")


@pytest.mark.requirement("euaiact:retention-minimum")
def test_purge_respects_the_minimum_and_keeps_proofs(log: Log, tmp_path: Path) -> None:
    import time

    with pytest.raises(PurgeError, match="retention minimum of 183 days"):
        purge_before(log.tree, int(time.time()) - 86400, 183)
    assert purge_before(log.tree, T0 + 15, 183, dry_run=True).count == 15
    assert purge_before(log.tree, T0 + 15, 183).count == 15
    assert [r.seq for r in log.tree.list_audit(0, 1)] == [16]
    assert log.verify() == []
    out = tmp_path / "after-purge.tar"
    manifest = export(log, out, 0, 40)
    assert manifest["counts"]["records"] == 25  # type: ignore[index]
    assert bundle_verifier.verify_bundle(str(out), log.checkpointer.verifier.encode())[1] == 25


def test_a_stored_line_edited_is_refused_by_export_and_found_by_verify(log: Log, tmp_path: Path) -> None:
    from sqlalchemy import update

    from authz.storage.models import AuditEvent

    row = log.tree.list_audit(4, 1)[0]
    assert row.line == record_line(row)  # the line a leaf hashes is stored with the record
    log.sql(update(AuditEvent).where(AuditEvent.seq == 5).values(line=row.line.replace(b"agent-", b"agent-9")))  # type: ignore[union-attr]
    with pytest.raises(ExportError, match="the record at leaf 4 does not match its tree leaf"):
        export_bundle(log.tree, log.checkpointer, ExportRequest(T0, T0 + 40), tmp_path / "x.tar", "t")
    assert log.verify() == ["record seq 5 differs from its stored line (exports copy it)"]


def test_records_without_a_stored_line_are_serialised_on_export(log: Log, tmp_path: Path) -> None:
    from sqlalchemy import update

    from authz.storage.models import AuditEvent

    expected = [record_line(r) for r in log.tree.list_audit(0, 40)]
    log.sql(update(AuditEvent).where(AuditEvent.seq % 3 == 0).values(line=None))  # as written before lines were kept
    out = tmp_path / "legacy.tar"
    assert export(log, out, 0, 40)["counts"]["records"] == 40  # type: ignore[index]
    assert members(out)["records.jsonl"].splitlines() == expected
    assert bundle_verifier.verify_bundle(str(out), log.checkpointer.verifier.encode())[1] == 40
    assert log.verify() == []
