"""``authz audit``: checkpoint, verify (and what it says when the log was tampered with), prove, key."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from authz.audit import merkle
from authz.audit.note import Verifier, parse_proof, verify_checkpoint
from authz.cli import main
from authz.storage.models import AuditEvent


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AUTHZ_AUDIT_CHECKPOINT_DIR", str(tmp_path / "outside"))
    monkeypatch.delenv("AUTHZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTHZ_CONFIG", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_checkpoint_verify_prove_and_tamper(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("alice", "bob"):
        monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
        assert run(capsys, "users", "add", name, "--password-stdin")[0] == 0
    code, out, _ = run(capsys, "audit", "checkpoint")
    assert code == 0 and "size 2" in out
    assert (tmp_path / "outside" / "checkpoint").is_file()
    code, out, err = run(capsys, "audit", "verify")
    assert code == 0 and "audit log intact: 2 records" in out, err
    key = Verifier.parse(run(capsys, "audit", "key")[1])
    code, proof_text, _ = run(capsys, "audit", "prove", "2")
    assert code == 0 and proof_text.startswith("c2sp.org/tlog-proof@v1\n")
    index, proof, note, extra = parse_proof(proof_text)
    cp = verify_checkpoint(note, [key])
    assert extra is not None and b'"user.created"' in extra and b"alice" not in extra and b"bob" not in extra
    assert merkle.verify_inclusion(merkle.leaf_hash(extra), index, cp.size, proof, cp.root)
    assert (
        run(capsys, "audit", "prove", "99")[2].strip() == "authz: no audit record with seq 99: see `authz audit list`"
    )

    bundle = tmp_path / "bundle.tar"
    code, out, err = run(capsys, "audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--out", str(bundle))
    assert code == 0 and "records" in out, err
    code, out, err = run(capsys, "audit", "verify-export", str(bundle), "--key", key.encode())
    assert code == 0 and out.startswith("OK: "), err
    code, _, err = run(capsys, "audit", "verify-export", str(tmp_path / "nope.tar"))
    assert code == 1 and err.count("\n") == 1 and "is not a file" in err
    code, _, err = run(capsys, "audit", "export", "--from", "yesterday", "--to", "2100-01-01")
    assert code == 1 and "is not an ISO date" in err
    assert run(capsys, "audit", "purge", "--before", "2100-01-01")[2].startswith("authz: refusing to purge")

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'authz.db'}")
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.seq == 2))
    engine.dispose()
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1 and "without their record" in err and "intact" not in out
