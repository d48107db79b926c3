"""The ``authz`` command, run in process against a real SQLite database in a temp directory."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from authz.cli import main, parser


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AUTHZ_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTHZ_CONFIG", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [
        "serve",
        "migrate",
        "demo",
        "clients add",
        "clients list",
        "resources add",
        "users add",
        "keys rotate",
        "audit verify",
    ]
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args([*command.split(), "--help"])
        assert exit_info.value.code == 0
        assert "usage: authz" in capsys.readouterr().out


def test_clients_lifecycle(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "clients", "add", "--client-id", "app", "--public", "--redirect-uri", "http://127.0.0.1:1/cb"
    )
    assert code == 0 and "client_id:     app" in out and "client_secret" not in out
    code, out, _ = run(capsys, "clients", "add", "--client-id", "bot", "--scope", "tools:read")
    assert code == 0 and re.search(r"client_secret: \S{40,}", out)
    code, out, _ = run(capsys, "clients", "list")
    assert "app" in out and "bot" in out and "client_credentials" in out
    assert run(capsys, "clients", "disable", "bot")[0] == 0
    assert re.search(r"bot\s+static\s+client_secret_basic\s+disabled", run(capsys, "clients", "list")[1])
    assert run(capsys, "clients", "enable", "bot")[0] == 0
    assert run(capsys, "clients", "remove", "bot")[0] == 0
    code, _, err = run(capsys, "clients", "remove", "bot")
    assert code == 1 and "no client" in err


@pytest.mark.requirement("mcp:redirect-uri-localhost-or-https")
def test_bad_client_input_is_a_clear_error_and_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "clients", "add", "--client-id", "x", "--public", "--grant-type", "client_credentials")
    assert code == 1 and "confidential" in err
    code, _, err = run(capsys, "clients", "add", "--client-id", "y", "--auth-method", "private_key_jwt")
    assert code == 1 and "jwks" in err
    code, _, err = run(
        capsys, "clients", "add", "--client-id", "z", "--public", "--redirect-uri", "http://app.example/cb"
    )
    assert code == 1 and "https" in err
    code, _, err = run(capsys, "clients", "add", "--client-id", "w", "--public", "--redirect-uri", "https://a/cb#frag")
    assert code == 1 and "fragment" in err
    listing = run(capsys, "clients", "list")[1]
    assert not any(f"\n{cid} " in "\n" + listing for cid in "xyzw")


def test_resources_add_prints_introspection_credentials_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "resources", "add", "https://mcp.example.com/mcp", "--scopes", "a:read,a:write")
    assert code == 0 and "scopes:        a:read a:write" in out and re.search(r"client_secret: \S{40,}", out)
    assert "https://mcp.example.com/mcp" in run(capsys, "resources", "list")[1]
    code, _, err = run(capsys, "resources", "add", "https://mcp.example.com/mcp#frag")
    assert code == 1 and "fragment" in err
    assert run(capsys, "resources", "list")[1].count("https://mcp.example.com/mcp") == 1
    assert run(capsys, "resources", "remove", "https://mcp.example.com/mcp")[0] == 0


def test_users_add_reads_the_password_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, out, _ = run(capsys, "users", "add", "alice", "--password-stdin")
    assert code == 0 and "alice" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "users", "add", "bob", "--password-stdin")
    assert code == 1 and "8 characters" in err
    listing = run(capsys, "users", "list")[1]
    assert "alice" in listing and "bob" not in listing


def test_keys_rotate_and_audit_verify(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and re.search(r"ES256\s+active", out) and re.search(r"ES256\s+next", out)
    code, out, _ = run(capsys, "keys", "rotate")
    assert code == 0 and "signing with" in out
    out = run(capsys, "keys", "list")[1]
    assert re.search(r"ES256\s+retired", out)
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "intact" in out
    events = [json.loads(line)["event"] for line in run(capsys, "audit", "list")[1].splitlines()]
    assert "key.rotated" in events


def test_generate_kek_prints_a_32_byte_key(capsys: pytest.CaptureFixture[str]) -> None:
    from authz.core.crypto import b64url_decode

    code, out, _ = run(capsys, "keys", "generate-kek")
    assert code == 0 and len(b64url_decode(out.strip())) == 32


def test_migrate_reports_the_current_revision(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    from alembic.script import ScriptDirectory

    import migrations

    head = ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()
    code, out, _ = run(capsys, "migrate", "current")
    assert code == 0 and out.strip() == head


def test_policy_tools_are_reachable_through_authz(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "check")
    assert code == 0 and out.startswith("ok:")
    code, out, _ = run(
        capsys,
        "policy",
        "explain",
        "--principal",
        'Agent::"agt_1"',
        "--resource",
        "http://127.0.0.1:9200/mcp",
        "--scopes",
        "tools:read tools:admin",
        "--delegated",
    )
    assert code == 0 and "granted: tools:read" in out and "base.forbid-delegated-admin" in out
    assert run(capsys, "policy", "--help")[0] == 0
    code, _, _ = run(capsys, "policy", "check", "/nonexistent-policy-dir")
    assert code != 0


def test_usage_prints_an_empty_table_on_a_fresh_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, _, err = run(capsys, "usage", "--granularity", "day", "--group-by", "agent")
    assert code == 0, err
