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
