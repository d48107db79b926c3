"""The README's code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_protect_an_mcp_server_snippet_builds_a_protected_app() -> None:
    section = README.split("## Protect an MCP server", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    app = namespace["app"]
    assert callable(app)
    assert type(app).__name__ != "Starlette"  # wrapped by the middleware, not the bare SDK app


def test_the_two_quick_start_commands_exist() -> None:
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", README, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert (Path(__file__).parents[1] / command).stat().st_mode & 0o111


def test_the_budgets_and_usage_hooks_snippet_wraps_the_readme_server() -> None:
    """docs/resource-server.md "Budgets and usage hooks" runs on top of the README's snippet as written."""
    readme = README.split("## Protect an MCP server", 1)[1]
    server = re.search(r"```python\n(.*?)```", readme, re.S)
    doc = (Path(__file__).parents[1] / "docs" / "resource-server.md").read_text()
    hooks = re.search(r"## Budgets and usage hooks.*?```python\n(.*?)```", doc, re.S)
    assert server is not None and hooks is not None
    namespace: dict[str, object] = {}
    exec(compile(server.group(1), "README.md", "exec"), namespace)
    exec(compile(hooks.group(1), "docs/resource-server.md", "exec"), namespace)
    assert callable(namespace["app"]) and type(namespace["reporter"]).__name__ == "UsageReporter"
    assert type(namespace["budget"]).__name__ == "BudgetHook"
