"""Parse, validate and format-check a policy set; report every problem with file:line:col."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cedarpy

from .bundle import NAMESPACE, Origin, PolicyBundle, origin_of
from .model import PolicyError, Problem
from .source import locate_named, locate_parse_error, position, statements

__all__ = ["SCHEMA_FILE", "build", "load", "read_sources"]

SCHEMA_FILE = "schema.cedarschema"
_SERVER = f"{NAMESPACE}::McpServer"
_SCOPE = f"{NAMESPACE}::Scope"


def _problem(file: str, text: str, offset: int, message: str) -> Problem:
    line, col = position(text, offset)
    return Problem(file, line, col, message)


def _try(fn: Any, text: str) -> str | None:
    try:
        fn(text)
    except ValueError as exc:
        return str(exc)
    return None


def _schema(text: str, problems: list[Problem]) -> cedarpy.Schema | None:
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as exc:
        msg = str(exc)
    at = locate_named(text, 0, len(text), msg)
    if at is None:
        at = locate_parse_error(text, lambda t: _try(cedarpy.Schema.from_str, t))
    problems.append(_problem(SCHEMA_FILE, text, at, msg))
    return None


def _policies(
    name: str, text: str, schema: cedarpy.Schema | None, check_format: bool, problems: list[Problem]
) -> dict[str, tuple[dict[str, Any], int]]:
    """The file's policies as {id: (EST, offset)}; problems appended."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        at = locate_parse_error(text, lambda t: _try(cedarpy.PolicySet.from_str, t))
        problems.append(_problem(name, text, at, f"syntax error: {exc}"))
        return {}
    stmts = statements(text)
    static: dict[str, Any] = est.get("staticPolicies", {})
    if est.get("templates"):
        problems.append(_problem(name, text, 0, "policy templates are not supported here"))
    out: dict[str, tuple[dict[str, Any], int]] = {}
    for i, (cedar_id, body) in enumerate(sorted(static.items(), key=lambda kv: int(kv[0].removeprefix("policy")))):
        offset = stmts[i].start if i < len(stmts) else 0
        pid = (body.get("annotations") or {}).get("id")
        if not pid:
            problems.append(_problem(name, text, offset, f'policy {cedar_id} has no @id("...") annotation'))
            continue
        out[pid] = (body, offset)
    if schema is not None:
        result = cedarpy.validate_policies(text, schema)
        for err in result.errors:
            idx = int(err.policy_id.removeprefix("policy")) if err.policy_id.startswith("policy") else 0
            st = stmts[idx] if idx < len(stmts) else None
            named = locate_named(text, st.start, st.end, err.error) if st else None
            at = named if named is not None else (st.start if st else 0)
            problems.append(_problem(name, text, at, err.error.removeprefix(f"for policy `{err.policy_id}`, ")))
    if check_format and not problems:
        formatted = cedarpy.format_policies(text)
        if formatted != text:
            a, b = text.splitlines(), formatted.splitlines()
            line = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            problems.append(Problem(name, line + 1, 1, "not formatted (run `python -m policies fmt`)"))
    return out


def _entities(files: Mapping[str, str], problems: list[Problem]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    merged: list[dict[str, Any]] = []
    where: dict[str, str] = {}
    for name, text in files.items():
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(items, list):
            problems.append(Problem(name, 1, 1, "entities must be a JSON list"))
            continue
        for item in items:
            uid = item.get("uid", {}) if isinstance(item, dict) else {}
            where.setdefault(f'{uid.get("type")}::"{uid.get("id")}"', name)
        merged.extend(items)
    return merged, where


def _unknown_scopes(pid: str, body: Mapping[str, Any], declared: Mapping[str, set[str]]) -> Iterator[tuple[str, str]]:
    """(server, scope) pairs a policy names that the server does not declare."""
    res = body.get("resource", {})
    entity = res.get("entity", {}) if res.get("op") in ("in", "==") else {}
    uri = entity.get("id") if entity.get("type") == _SERVER else None
    if uri not in declared:
        return

    def is_name(node: Any) -> bool:
        return isinstance(node, dict) and node.get(".") == {"left": {"Var": "resource"}, "attr": "name"}

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            eq = node.get("==")
            if isinstance(eq, dict) and is_name(eq.get("left")) and isinstance(eq.get("right"), dict):
                value = eq["right"].get("Value")
                if isinstance(value, str):
                    yield value
            has = node.get("contains")
            if isinstance(has, dict) and is_name(has.get("right")) and isinstance(has.get("left"), dict):
                yield from (v["Value"] for v in has["left"].get("Set", []) if isinstance(v.get("Value"), str))
            for child in node.values():
                yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)

    for scope in walk(body.get("conditions", [])):
        if scope not in declared[str(uri)]:
            yield str(uri), scope


def build(
    schema_text: str,
    policies: Mapping[str, str],
    entities_json: str | Mapping[str, str] = "[]",
    *,
    check_format: bool = True,
) -> PolicyBundle:
    problems: list[Problem] = []
    schema = _schema(schema_text, problems)
    ent_files = {"entities.json": entities_json} if isinstance(entities_json, str) else dict(entities_json)
    merged: dict[str, dict[str, Any]] = {}
    origins: dict[str, Origin] = {}
    for name in sorted(policies):
        text = policies[name]
        for pid, (body, offset) in _policies(name, text, schema, check_format, problems).items():
            if pid in merged:
                problems.append(_problem(name, text, offset, f'duplicate @id("{pid}"), first at {origins[pid]}'))
                continue
            merged[pid] = body
            origins[pid] = origin_of(name, text, offset)
    entity_list, where = _entities(ent_files, problems)
    entities = None
    if schema is not None and not any(p.file in ent_files for p in problems):
        try:
            entities = cedarpy.Entities.from_json_str(json.dumps(entity_list), schema)
        except ValueError as exc:
            msg = str(exc)
            file = next((f for uid, f in where.items() if uid in msg), next(iter(ent_files), "entities.json"))
            text = ent_files.get(file, "")
            at = locate_named(text, 0, len(text), msg)
            problems.append(_problem(file, text, at or 0, msg))
    declared: dict[str, set[str]] = {}
    for e in entity_list:
        uid = e.get("uid", {})
        if uid.get("type") == _SERVER:
            declared.setdefault(uid["id"], set())
        if uid.get("type") == _SCOPE:
            for parent in e.get("parents", []):
                declared.setdefault(parent.get("id"), set()).add(e.get("attrs", {}).get("name"))
    for pid, body in merged.items():
        for uri, scope in _unknown_scopes(pid, body, declared):
            o = origins[pid]
            problems.append(Problem(o.file, o.line, o.col, f'scope "{scope}" is not declared for {uri} (policy {pid})'))
    if problems or schema is None or entities is None:
        raise PolicyError(problems)
    doc = {"staticPolicies": merged, "templates": {}, "templateLinks": []}
    return PolicyBundle(
        schema=schema,
        policy_set=cedarpy.PolicySet.from_json_str(json.dumps(doc)),
        entities=entities,
        static_uids=frozenset((e["uid"]["type"], e["uid"]["id"]) for e in entity_list),
        origins=origins,
        sources=policies,
        schema_text=schema_text,
        entities_json=ent_files,
        est=merged,
    )


def read_sources(path: str | Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """(schema text, {policy file: text}, {entities file: text}) of a policy directory."""
    root = Path(path)
    schema_path = root / SCHEMA_FILE
    if not schema_path.is_file():
        raise PolicyError([Problem(str(schema_path), 1, 1, "schema file not found")])
    files = sorted([*root.glob("*.cedar"), *root.glob("servers/*.cedar")])
    policies = {f.relative_to(root).as_posix(): f.read_text(encoding="utf-8") for f in files}
    ent_paths = sorted([*root.glob("entities.json"), *root.glob("servers/*.entities.json")])
    ents = {f.relative_to(root).as_posix(): f.read_text(encoding="utf-8") for f in ent_paths}
    return schema_path.read_text(encoding="utf-8"), policies, ents


def load(path: str | Path, *, check_format: bool = True) -> PolicyBundle:
    """Load a policy directory: parse, validate against its schema, check formatting."""
    schema_text, policies, ents = read_sources(path)
    return build(schema_text, policies, ents or {"entities.json": "[]"}, check_format=check_format)
