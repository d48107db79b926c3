"""``authz agents``, ``authz teams`` and ``authz admin-client``, in process on a real SQLite database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

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
    for command in ("agents", "agents create", "agents list", "agents show", "agents suspend", "agents reinstate",
                    "agents revoke", "agents credentials", "agents credentials issue", "agents credentials rotate",
                    "agents credentials revoke", "teams create", "teams list", "admin-client create"):  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args([*command.split(), "--help"])
        assert exit_info.value.code == 0
        assert "usage: authz" in capsys.readouterr().out


def _agent_id(out: str) -> str:
    match = re.search(r"^id:\s+(agt_\w+)", out, re.M)
    assert match, out
    return match.group(1)


def test_agent_lifecycle_and_credentials(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "teams", "create", "payments")[0] == 0
    assert "payments" in run(capsys, "teams", "list")[1]
    code, out, err = run(capsys, "agents", "create", "billing bot", "--team", "payments", "--tag", "prod",
                         "--tag", "eu", "--description", "pays")  # fmt: skip
    assert code == 0, err
    aid = _agent_id(out)
    assert re.search(r"status:\s+active", out)
    code, out, _ = run(capsys, "agents", "list", "--team", "payments")
    assert code == 0 and re.search(rf"{aid}\s+billing bot\s+active\s+team_\w+\s+prod eu", out)
    assert aid not in run(capsys, "agents", "list", "--status", "suspended")[1]

    code, out, _ = run(capsys, "agents", "credentials", "issue", aid)
    assert code == 0
    secret = re.search(r"client_secret: (\S{40,})", out)
    cred = re.search(r"credential:\s+(cred_\w+)", out)
    assert secret and cred
    code, out, _ = run(capsys, "agents", "credentials", "rotate", aid, cred.group(1), "--overlap", "60")
    assert code == 0 and re.search(r"client_secret: \S{40,}", out) and "works until" in out
    assert secret.group(1) not in out
    key = ECKey.generate_key("P-256", auto_kid=True)
    (tmp_path / "key.json").write_text(json.dumps(key.as_dict(private=False)))
    code, out, _ = run(capsys, "agents", "credentials", "issue", aid, "--kind", "public_key", "--jwk-file",
                       str(tmp_path / "key.json"))  # fmt: skip
    assert code == 0 and "client_secret" not in out
    code, out, _ = run(capsys, "agents", "show", aid)
    assert code == 0 and out.count("cred_") == 3 and str(key.kid) in out and secret.group(1) not in out

    code, _, err = run(capsys, "agents", "reinstate", aid)
    assert code == 1 and "cannot reinstate an agent that is active" in err
    assert run(capsys, "agents", "suspend", aid, "--reason", "incident")[0] == 0
    assert re.search(r"status:\s+suspended", run(capsys, "agents", "show", aid)[1])
    assert run(capsys, "agents", "reinstate", aid)[0] == 0
    assert run(capsys, "agents", "revoke", aid)[0] == 0
    code, _, err = run(capsys, "agents", "suspend", aid)
    assert code == 1 and "revoked" in err
    code, out, _ = run(capsys, "agents", "credentials", "list", aid)
    assert out.count("revoked") == 3


def test_errors_are_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "agents", "show", "agt_nope")
    assert code == 1 and "no agent" in err and "Traceback" not in err
    code, _, err = run(capsys, "agents", "create", "bot", "--team", "nope", "--tag", "bad tag")
    assert code == 1 and "team:" in err and "tags:" in err
    assert "agt_" not in run(capsys, "agents", "list")[1]
    code, _, err = run(capsys, "agents", "credentials", "issue", "agt_x", "--kind", "public_key")
    assert code == 1 and "--jwk-file" in err


def test_admin_client_create_prints_a_working_curl_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "admin-client", "create", "--name", "ops")
    assert code == 0
    assert re.search(r"client_secret: \S{40,}", out)
    assert "resource=http://127.0.0.1:9100/api/v1" in out and "grant_type=client_credentials" in out
    assert "scope=admin:read admin:write" in out
    code, _, err = run(capsys, "admin-client", "create", "--scopes", "root")
    assert code == 1 and "scopes must be" in err
