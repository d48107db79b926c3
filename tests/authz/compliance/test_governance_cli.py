"""``authz incidents``, ``authz ai-act`` and ``authz oversight``: JSON out, one-line errors, audited as ``cli``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from authz.cli import main

pytestmark = pytest.mark.requirement("euaiact:art73-incident-clock")


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


def test_incidents_ai_act_and_oversight(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "agents", "create", "refund-bot")
    agent = re.search(r"agt_\w+", out).group(0)  # type: ignore[union-attr]
    args = ["--agent", agent, "--from-seq", "1", "--to-seq", "3", "--aware-at", "2026-12-01T09:00:00Z"]
    code, out, err = run(capsys, "incidents", "open", "--title", "Refunds to wrong accounts", "--kind", "death", *args)
    assert code == 0, err
    inc = json.loads(out)
    assert inc["reporting_days"] == 10 and inc["deadline"] == inc["aware_at"] + 10 * 86_400 and inc["agents"] == [agent]
    code, out, _ = run(capsys, "incidents", "update", inc["id"], "--reported-at", "2026-12-02T10:00:00+00:00")
    assert code == 0 and json.loads(out)["seconds_left"] is None
    assert run(capsys, "incidents", "close", inc["id"], "--resolution", "rolled back")[0] == 0
    code, _, err = run(capsys, "incidents", "close", inc["id"])
    assert code == 1 and err.count("\n") == 1 and "already closed" in err
    code, _, err = run(capsys, "incidents", "open", "--title", "x", "--agent", "agt_nope")
    assert code == 1 and "agents.0" in err and "Traceback" not in err

    code, _, err = run(capsys, "ai-act", "set", agent, "--risk", "high", "--purpose", "p", "--provider", "A",
                       "--deployer", "B")  # fmt: skip
    assert code == 1 and "annex_iii_area" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "ai-act", "set", agent, "--risk", "high", "--annex-iii-area", "employment",
                       "--purpose", "screens CVs", "--provider", "Acme", "--deployer", "Beta")  # fmt: skip
    assert code == 0 and json.loads(out)["annex_iii_area"] == "employment"
    assert json.loads(run(capsys, "ai-act", "show", agent)[1])["risk"] == "high"

    code, _, err = run(capsys, "oversight", "require", "https://unregistered.example/mcp", "delete")
    assert code == 1 and "resource" in err
    assert run(capsys, "resources", "add", "https://mcp.example/mcp", "--scopes", "tools:read")[0] == 0
    code, out, _ = run(capsys, "oversight", "require", "https://mcp.example/mcp", "delete", "--min-risk", "high")
    assert code == 0 and json.loads(out)["min_risk"] == "high"
    assert [r["tool"] for r in json.loads(run(capsys, "oversight", "rules")[1])] == ["delete"]
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
