"""``authz billing``: readable tables, one-line errors with the field and what to run, exit 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authz.cli import main, parser

ACTIONS = (
    "customer",
    "customers",
    "plan",
    "plans",
    "subscribe",
    "credit",
    "preview",
    "close",
    "receipt",
    "invoices",
    "invoice",
)


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


def test_every_billing_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ACTIONS:
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args(["billing", action, "--help"])
        assert exit_info.value.code == 0
        assert "usage: authz billing" in capsys.readouterr().out


def test_plan_customer_subscribe_preview_close(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "billing", "plan", "hybrid", "--example", "hybrid")[0] == 0
    code, out, _ = run(capsys, "billing", "customer", "acme", "--name", "Acme", "--currency", "USD")
    assert code == 0 and "customer acme" in out
    assert run(capsys, "billing", "subscribe", "acme", "hybrid", "--starts-at", "2026-01-01T00:00:00Z")[0] == 0
    assert run(capsys, "billing", "credit", "acme", "9.99", "--effective-at", "2026-01-01T00:00:00Z")[0] == 0
    code, out, _ = run(capsys, "billing", "preview", "acme", "--at", "2026-01-10T00:00:00Z")
    assert code == 0
    assert re.search(r"Platform\s+1\s+199\.00", out) and re.search(r"TOTAL\s+189\.01", out), out
    assert "final after 2026-02-01T12:00:00Z" in out
    code, out, _ = run(capsys, "billing", "close", "acme", "--at", "2026-01-10T00:00:00Z")
    assert code == 0 and re.search(r"finalized: INV-000001 \(in_\w+\) total 189\.01", out), out
    code, out, _ = run(capsys, "billing", "close", "acme", "--at", "2026-01-20T00:00:00Z")
    assert code == 0 and out.startswith("already finalized: INV-000001")
    code, out, _ = run(capsys, "billing", "invoices")
    assert re.search(r"INV-000001\s+in_\w+\s+acme\s+2026-01-01T00:00:00Z\s+189\.01 USD", out), out
    invoice_id = re.search(r"(in_\w+)", out)
    assert invoice_id
    code, out, _ = run(capsys, "billing", "invoice", invoice_id[1], "--csv")
    assert code == 0 and out.startswith("invoice,number,customer")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("billing", "customer", "x", "--name", "X", "--currency", "XYZ"), "(currency); see authz billing customer"),
        (("billing", "preview", "nobody"), "no customer 'nobody'"),
        (("billing", "subscribe", "nobody", "hybrid"), "no customer"),
        (("billing", "credit", "acme", "-5"), "no customer"),
        (("billing", "preview", "acme", "--at", "yesterday"), "see authz billing preview --help"),
        (
            ("billing", "customer", "x", "--name", "X", "--currency", "USD", "--agent", "agt_nope"),
            "no agent 'agt_nope' (agents.0)",
        ),  # the API's error for the same member
        (
            ("billing", "customer", "x", "--name", "X", "--currency", "USD", "--team", "nobody"),
            "no team 'nobody' (give its id or name) (teams.0)",
        ),
    ],
)
def test_misuse_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err
    assert run(capsys, "billing", "customers")[1].startswith("no customers")  # a refused command changed nothing
