"""Settings: sources, validation, and the refusal to run unsafe production values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from authz.core.settings import Settings, UnsafeSettingsError, check_safe


def test_embedded_defaults_are_a_loopback_issuer_and_a_sqlite_file(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.issuer == "http://127.0.0.1:9100"
    assert s.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'authz.db'}"
    assert s.access_token_ttl <= 600 and s.signing_alg == "ES256"
    check_safe(s)


def test_environment_overrides_the_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "authz.toml"
    config.write_text('issuer = "https://as.example.com"\naccess_token_ttl = 120\n')
    monkeypatch.setenv("AUTHZ_CONFIG", str(config))
    monkeypatch.setenv("AUTHZ_ACCESS_TOKEN_TTL", "90")
    s = Settings()
    assert s.issuer == "https://as.example.com" and s.access_token_ttl == 90


def test_unknown_settings_in_the_file_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "authz.toml"
    config.write_text("isuer = 'https://typo.example'\n")
    monkeypatch.setenv("AUTHZ_CONFIG", str(config))
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("issuer", ["https://as.example.com/", "https://as.example.com?x=1", "ftp://as", "as.example"])
def test_malformed_issuers_are_refused(issuer: str) -> None:
    with pytest.raises(ValidationError):
        Settings(issuer=issuer)


@pytest.mark.requirement("mcp:as-https")
def test_plain_http_non_loopback_issuer_is_refused_with_what_to_set() -> None:
    with pytest.raises(UnsafeSettingsError, match="AUTHZ_ISSUER"):
        check_safe(Settings(issuer="http://as.example.com", key_encryption_key="k"))


def test_missing_key_encryption_key_is_refused_off_loopback() -> None:
    with pytest.raises(UnsafeSettingsError, match="AUTHZ_KEY_ENCRYPTION_KEY"):
        check_safe(Settings(issuer="https://as.example.com"))
    check_safe(Settings(issuer="https://as.example.com", key_encryption_key="x" * 43))


def test_development_mode_is_refused_off_loopback() -> None:
    with pytest.raises(UnsafeSettingsError, match="loopback"):
        check_safe(Settings(issuer="https://as.example.com", key_encryption_key="x" * 43, dev_mode=True))


def test_serve_refuses_unsafe_settings_with_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from authz.cli import main

    monkeypatch.setenv("AUTHZ_ISSUER", "http://as.example.com")
    assert main(["serve", "--no-migrate"]) == 2
    assert "AUTHZ_ISSUER" in capsys.readouterr().err
