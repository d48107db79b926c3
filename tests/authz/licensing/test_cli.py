"""``authz licenses``: the lifecycle from the command line, one-line errors, files that verify offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_client.licenses import verify_license_file
from authz.cli import main


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


def field(out: str, name: str) -> str:
    return next(line.split(": ", 1)[1].split()[0] for line in out.splitlines() if line.startswith(name + ": "))


def test_licenses_from_the_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for args in (["licenses", "--help"], ["licenses", "policies", "add", "--help"], ["licenses", "checkout", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0
    capsys.readouterr()
    assert run(capsys, "licenses", "products", "add", "app", "--name", "App")[0] == 0
    code, out, err = run(capsys, "licenses", "products", "add", "app")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "already exists" in err
    code, _, err = run(capsys, "licenses", "policies", "add", "--product", "nope", "--name", "x")
    assert (
        code == 1
        and err.strip() == "authz: product: no such product (give its id or code) (see: authz licenses policies --help)"
    )
    code, out, _ = run(capsys, "licenses", "policies", "add", "--product", "app", "--name", "std",
                       "--entitlement", "pro", "--max-machines", "2")  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "licenses", "create", "--policy", field(out, "policy_id"), "--customer", "cus_1")
    assert code == 0
    license_id, key = field(out, "license_id"), field(out, "key")
    assert key.startswith("LK-")
    code, out, _ = run(capsys, "licenses", "list")
    assert code == 0 and license_id in out and key not in out
    code, out, _ = run(capsys, "licenses", "show", license_id)
    assert json.loads(out)["entitlements"] == ["pro"] and key not in out
    target = tmp_path / "license.lic"
    assert run(capsys, "licenses", "checkout", license_id, "-o", str(target))[0] == 0
    code, out, _ = run(capsys, "licenses", "jwks")
    got = verify_license_file(target.read_text(), json.loads(out), entitlements=["pro"])
    assert got.license["id"] == license_id
    code, _, err = run(capsys, "licenses", "checkout", license_id, "--fingerprint", "nope")
    assert code == 1 and "no machine" in err
    assert run(capsys, "licenses", "suspend", license_id, "--reason", "unpaid")[1].strip() == f"{license_id}: suspended"
    code, _, err = run(capsys, "licenses", "suspend", license_id)
    assert code == 1 and "cannot suspend a license that is suspended" in err
    code, out, _ = run(capsys, "licenses", "sweep")
    assert code == 0 and out.startswith("dead: 0")
    code, _, err = run(capsys, "licenses", "webhooks", "add", "http://10.0.0.1/x")
    assert code == 1 and "https" in err
