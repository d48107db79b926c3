"""The requirement manifest and the tests agree: every id is proven or explicitly PENDING, and no tag is unknown.

Tags are found by reading test sources with ``ast`` (no import, no collection): any call
``pytest.mark.requirement("<id>", ...)`` / ``mark.requirement(...)`` in a ``*.py`` file under
``tests/`` or ``conformance/`` — decorators, ``pytestmark`` and ``pytest.param(marks=...)`` alike.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conformance.requirements import PENDING, REQUIREMENTS

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "conformance")
ID_RE = re.compile(r"^(mcp|oauth21|euaiact|gdpr|c2sp|ssf|caep|rfc\d{4}):[a-z0-9]+(-[a-z0-9]+)*$")


def _is_requirement_mark(func: ast.expr) -> bool:
    """``<...>.mark.requirement`` or ``mark.requirement``."""
    if not (isinstance(func, ast.Attribute) and func.attr == "requirement"):
        return False
    owner = func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark"
    )


def scan() -> tuple[dict[str, list[str]], list[str]]:
    """(requirement id -> ["path:line", ...], problems such as non-literal ids)."""
    tagged: dict[str, list[str]] = {}
    problems: list[str] = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if any(part.startswith(".") or part in ("node_modules", "__pycache__") for part in path.parts):
                continue
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(), filename=rel)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and _is_requirement_mark(node.func)):
                    continue
                where = f"{rel}:{node.lineno}"
                if not node.args:
                    problems.append(f"{where}: requirement mark without an id")
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        tagged.setdefault(arg.value, []).append(where)
                    else:
                        problems.append(f"{where}: requirement ids must be string literals (the scanner reads them)")
    return tagged, problems


def tagged_requirements() -> dict[str, list[str]]:
    return scan()[0]


def test_requirement_marks_are_string_literals() -> None:
    _, problems = scan()
    assert problems == []


def test_every_tagged_id_is_in_the_manifest() -> None:
    unknown = {rid: where for rid, where in tagged_requirements().items() if rid not in REQUIREMENTS}
    assert unknown == {}, f"add these ids to conformance/requirements.py (or fix the tag): {unknown}"


def test_every_manifest_id_is_tagged_or_pending() -> None:
    tagged = tagged_requirements()
    uncovered = sorted(rid for rid in REQUIREMENTS if rid not in tagged and rid not in PENDING)
    assert uncovered == [], f"tag a test with these ids, or list them in PENDING: {uncovered}"


def test_pending_is_not_stale() -> None:
    tagged = tagged_requirements()
    now_tagged = sorted(PENDING & tagged.keys())
    assert now_tagged == [], f"these ids have tagged tests now, remove them from PENDING: {now_tagged}"
    assert sorted(PENDING - REQUIREMENTS.keys()) == [], "PENDING lists ids that are not in the manifest"


def test_manifest_entries_are_well_formed() -> None:
    bad = [
        rid
        for rid, req in REQUIREMENTS.items()
        if not ID_RE.match(rid) or not req.url.startswith("https://") or not req.quote.strip() or not req.behaviour
    ]
    assert bad == []


def test_the_scanner_finds_every_mark_shape() -> None:
    source = (
        "import pytest\nfrom pytest import mark\n"
        "pytestmark = [pytest.mark.requirement('a:one')]\n"
        "@pytest.mark.requirement('a:two', 'a:three')\n"
        "@mark.requirement('a:four')\n"
        "def test_x(): pass\n"
        "P = pytest.param(1, marks=pytest.mark.requirement('a:five'))\n"
        "Q = pytest.mark.requirement(NAME)\n"
    )
    tree = ast.parse(source)
    found = [
        str(arg.value) if isinstance(arg, ast.Constant) else "<expr>"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _is_requirement_mark(node.func)
        for arg in node.args
    ]
    assert sorted(found) == ["<expr>", "a:five", "a:four", "a:one", "a:three", "a:two"]
