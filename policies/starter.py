"""A starter policy set for a new MCP server: ``authz policy starter`` and ``authz resources add --policy-dir``.

A new server's scopes are permitted by nothing until a policy names them (default deny). The starter
policy permits every scope the server offers to every principal (the organisation-wide forbids in
``base.cedar`` still apply); it is a first step, meant to be narrowed to teams or groups.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .loader import load
from .tools import fmt, generate_server_actions

__all__ = ["server_slug", "starter_policy", "write_starter"]

BASE_FILES = ("schema.cedarschema", "base.cedar", "entities.json")
_HERE = Path(__file__).resolve().parent


def server_slug(uri: str, name: str = "") -> str:
    """A file and policy-id name for a server: its display name, else its host's first label."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    raw = name or (host.split(".")[0] if host[:1].isalpha() else f"server-{parts.port or 443}")
    slug = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    return slug or "server"


def starter_policy(uri: str, scopes: Sequence[str], slug: str) -> str:
    listed = ", ".join(f'"{s}"' for s in scopes)
    text = (
        f"// {uri}: starter policy written by `authz policy starter`.\n"
        "// It lets every user, agent and client obtain every scope this server offers (the forbids in\n"
        '// base.cedar still apply). Narrow it before real use, e.g. `principal in Authz::Team::"NAME"` or\n'
        '// `principal in Authz::Group::"NAME"`, one permit per scope; `authz policy check DIR` checks it.\n'
        f'@id("{slug}.starter")\n'
        "permit (\n"
        "  principal,\n"
        '  action == Authz::Action::"obtain_scope",\n'
        f'  resource in Authz::McpServer::"{uri}"\n'
        ")\n"
        f"when {{ [{listed}].contains(resource.name) }};\n"
    )
    return fmt(text, name=f"{slug}.cedar")


def write_starter(directory: Path, uri: str, scopes: Sequence[str], slug: str) -> list[Path]:
    """Write the server's policy and entities into ``directory`` (seeded with the embedded schema, base
    rules and entities when it holds no policy set yet), then load the whole set to prove it valid.
    Raises ``PolicyError`` (the set does not load) or ``FileExistsError`` (the server's file exists)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if not (directory / "schema.cedarschema").exists():
        for name in BASE_FILES:
            shutil.copyfile(_HERE / name, directory / name)
            written.append(directory / name)
    servers = directory / "servers"
    servers.mkdir(exist_ok=True)
    policy_file, entities_file = servers / f"{slug}.cedar", servers / f"{slug}.entities.json"
    if policy_file.exists():
        raise FileExistsError(f"{policy_file} exists already: edit it, or pick another --name")
    policy_file.write_text(starter_policy(uri, scopes, slug), encoding="utf-8")
    entities_file.write_text(generate_server_actions(uri, list(scopes)), encoding="utf-8")
    written += [policy_file, entities_file]
    load(directory)
    return written
