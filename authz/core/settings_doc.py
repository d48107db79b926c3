"""Renders ``docs/configuration.md`` from the Settings model, so the document cannot drift from the code.

``authz config-docs > docs/configuration.md`` regenerates it; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Any

from authz.core.settings import Settings

HEADER = """# Configuration

Every setting comes from, in order of precedence: the environment (`AUTHZ_<NAME>`), the TOML file
named by `AUTHZ_CONFIG` (top-level keys are the names below in lower case), then the embedded
default. Unknown keys in the file are refused. `authz serve` refuses to start on unsafe production
values (a plain-HTTP issuer off loopback, no key-encryption key, development mode off loopback) and
says what to set.

This file is generated: `authz config-docs > docs/configuration.md`.

| Environment variable | Default | Description |
|---|---|---|
"""


def _default(value: Any) -> str:
    if value == "" or value is None:
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `AUTHZ_{name.upper()}` | {_default(field.default)} | {description} |")
    return HEADER + "\n".join(rows) + "\n"
