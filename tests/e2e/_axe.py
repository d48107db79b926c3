"""axe-core for the browser tests: ``npm pack axe-core@AXE_VERSION`` once into ``.node/axe-core-<v>/``
(npm is what ``scripts/node`` already uses), then evaluated in the page by Playwright (DevTools
evaluation is not subject to the page's CSP, so the console's strict policy stays on)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

AXE_VERSION = "4.14.1"
ROOT = Path(__file__).resolve().parents[2]


def axe_source() -> str | None:
    target = ROOT / ".node" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(target.parent), "--silent"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        tgz = target.parent / f"axe-core-{AXE_VERSION}.tgz"
        if done.returncode != 0 or not tgz.exists():
            return None
        with tarfile.open(tgz) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            target.write_bytes(member.read())
    return target.read_text()


def serious_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """Run axe on the page; the violations of impact serious or critical (id, impact, targets)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source + "\n;window.axe = axe;")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
