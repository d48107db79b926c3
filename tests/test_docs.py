"""The docs cannot drift from the code: ``docs/configuration.md`` is what ``authz config-docs`` prints, every
metering knob is documented, and docs and docstrings speak of the product, not of issue numbers."""

from __future__ import annotations

import re
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from authz.cli import main
from authz.metering.config import DOCS, MeteringConfig

ROOT = Path(__file__).parents[1]


def test_configuration_md_is_what_config_docs_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config-docs"]) == 0
    printed = capsys.readouterr().out
    assert (ROOT / "docs" / "configuration.md").read_text() == printed, (
        "docs/configuration.md is stale: run `.venv/bin/authz config-docs > docs/configuration.md`"
    )
    assert "`AUTHZ_POLICIES`" in printed and "`AUTHZ_METERING_REDIS_CLAIM_IDLE_MS` | `30000`" in printed


def test_every_metering_knob_is_documented() -> None:
    assert set(DOCS) == {f.name for f in fields(MeteringConfig)}


def test_docs_and_docstrings_name_no_issue_numbers() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    pattern = re.compile(r"\b[Ii]ssue \d+|\(issue\b")
    offenders = [
        f"{path}:{n}"
        for path in tracked.split()
        if path.endswith((".md", ".py", ".cedar"))
        and not path.startswith(("CHANGELOG", "tests/"))
        and (ROOT / path).exists()
        for n, line in enumerate((ROOT / path).read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
