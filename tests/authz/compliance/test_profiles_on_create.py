"""A user's personal data is their profile from the moment the user exists: written encrypted with
their own key (not readable in the database), returned by the GDPR export, destroyed by erasure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from authz.cli import main
from authz.cli.admin import _ctx
from authz.compliance.subjects import vault
from authz.storage.models.compliance import SubjectProfile
from tests.authz.compliance.test_subjects import traces

EMAIL = "quill.v9r@example.org"
NAME = "Quill Vantablack"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AUTHZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTHZ_CONFIG", raising=False)
    return tmp_path


def test_a_user_created_with_the_cli_has_an_encrypted_profile_that_export_and_erase_cover(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "add", "quill-v9r", "--password-stdin", "--email", EMAIL, "--name", NAME]) == 0
    subject = capsys.readouterr().out.split("(")[1].split(")")[0]
    ctx = _ctx()
    assert vault(ctx).get(subject) == {"username": "quill-v9r", "email": EMAIL, "name": NAME}
    with ctx.store.sessions() as s:  # type: ignore[attr-defined]
        blob = s.get(SubjectProfile, subject).ciphertext
    assert EMAIL.encode() not in blob and NAME.encode() not in blob
    engine = ctx.store.engine  # type: ignore[attr-defined]
    assert [t for t in traces(engine, [EMAIL, NAME]) if t[0] != "subject_profiles"] == []

    assert main(["subjects", "export", subject]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["profile"] == {"username": "quill-v9r", "email": EMAIL, "name": NAME}

    assert main(["subjects", "erase", subject, "--yes"]) == 0
    capsys.readouterr()
    assert vault(_ctx()).get(subject) is None
    assert traces(engine, [EMAIL, NAME, "quill-v9r", subject]) == []


def test_a_user_without_email_or_name_still_has_a_profile(cli_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "add", "plain-user", "--password-stdin"]) == 0
    subject = capsys.readouterr().out.split("(")[1].split(")")[0]
    assert vault(_ctx()).get(subject) == {"username": "plain-user"}
