"""Set-up mistakes are one line saying what is wrong and what to run, with a non-zero exit: never a
traceback. Each case here printed a traceback before (``authz.preflight``, ``authz doctor``)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from authz.cli import main
from authz.core.crypto import generate_kek

# Blocks the named top-level modules as if their extra were not installed (the only way to run
# "pip install authz without extras" inside a venv that has them).
BLOCKER = """
import sys
BLOCKED = set({blocked!r})
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Missing())
"""


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    for name in ("AUTHZ_DATABASE_URL", "AUTHZ_CONFIG", "AUTHZ_POLICIES", "AUTHZ_ISSUER", "AUTHZ_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AUTHZ_KEY_ENCRYPTION_KEY", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(code: int, err: str) -> str:
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("authz: ") and "Traceback" not in err, err
    return err


def blocked_authz(tmp_path: Path, *modules: str) -> dict[str, str]:
    """The environment of an ``authz`` process in which ``modules`` cannot be imported."""
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=list(modules)))
    return {**os.environ, "PYTHONPATH": str(site)}


def test_an_unmigrated_data_dir_is_one_line_and_leaves_no_empty_database(
    capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    err = one_line(*run(capsys, "usage")[::2])
    assert "no database at" in err and "run `authz migrate`" in err
    assert not (env / "data" / "authz.db").exists()
    # an empty database file (created by something else) is "not migrated"
    (env / "data").mkdir()
    (env / "data" / "authz.db").touch()
    err = one_line(*run(capsys, "usage")[::2])
    assert "is not migrated (empty)" in err and "authz migrate" in err


def test_a_malformed_key_encryption_key_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: Path
) -> None:
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", "not-a-key")
    err = one_line(*run(capsys, "migrate")[::2])
    assert "AUTHZ_KEY_ENCRYPTION_KEY is malformed" in err and "authz keys generate-kek" in err
    assert not (env / "data" / "authz.db").exists()


def test_the_wrong_key_encryption_key_is_one_line_at_every_command_and_at_serve(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", generate_kek())
    assert run(capsys, "keys", "list")[0] == 0  # stores keys encrypted with the first key
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", generate_kek())  # a new key per shell: the README's old bug
    for args in (["keys", "list"], ["serve", "--port", "1"]):
        err = one_line(*run(capsys, *args)[::2])
        assert "is not the key the stored signing keys were encrypted with" in err


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    base = postgres_url.rsplit("/", 1)[0]
    name = f"authz_missing_{secrets.token_hex(4)}"
    monkeypatch.setenv("AUTHZ_DATABASE_URL", f"{base}/{name}")
    err = one_line(*run(capsys, "migrate")[::2])
    assert f'database "{name}" does not exist' in err and f"createdb {name}" in err


def test_an_unreachable_database_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHZ_DATABASE_URL", "postgresql://authz@127.0.0.1:1/authz")
    err = one_line(*run(capsys, "usage")[::2])
    assert "cannot reach the database at 127.0.0.1:1/authz" in err


def test_postgresql_without_the_postgres_extra_is_one_line(tmp_path: Path) -> None:
    env = {**blocked_authz(tmp_path, "psycopg"), "AUTHZ_DATABASE_URL": "postgresql://authz@127.0.0.1:5432/authz"}
    done = subprocess.run(
        [sys.executable, "-m", "authz", "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'authz[postgres]'" in done.stderr


def test_demo_without_the_mcp_extra_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "authz", "demo", "--port", "1", "--mcp-port", "2"],
        env=blocked_authz(tmp_path, "mcp"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'authz[mcp]'" in done.stderr


def test_doctor_passes_on_a_migrated_database_and_fails_on_a_wrong_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and "FAIL database" in out and "authz migrate" in out  # nothing yet: says what to run
    kek = generate_kek()
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", kek)
    monkeypatch.setenv("AUTHZ_REDIS_URL", redis_url)
    assert run(capsys, "keys", "list")[0] == 0
    code, out, _ = run(capsys, "doctor")
    assert code == 0, out
    for name in ("settings", "kek", "database", "signing keys", "redis", "policies", "extra postgres"):
        assert any(line.startswith("ok") and f" {name} " in line for line in out.splitlines()), (name, out)
    assert "builtin (8 policies; permits tools:read/write/admin on loopback MCP servers only" in out
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", generate_kek())
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and "FAIL signing keys" in out
    monkeypatch.setenv("AUTHZ_KEY_ENCRYPTION_KEY", kek)
    monkeypatch.setenv("AUTHZ_REDIS_URL", "redis://127.0.0.1:1/0")
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and "FAIL redis" in out and "cannot reach Redis" in out
