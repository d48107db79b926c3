"""Tools for policy authors: format, compare, generate server entities, run ALLOW/DENY examples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from .bundle import PolicyBundle, server_entities
from .model import PolicyError, Problem
from .source import locate_parse_error, position

__all__ = [
    "DiffResult",
    "ExampleResult",
    "diff",
    "example_texts",
    "fmt",
    "generate_server_actions",
    "parse_examples",
    "run_example_doc",
    "run_examples",
]


def fmt(text: str, *, name: str = "<policies>") -> str:
    """Cedar's canonical formatting of policy text. Raises `PolicyError` (with location) if it does not parse."""
    try:
        return str(cedarpy.format_policies(text))
    except ValueError as exc:

        def parse(t: str) -> str | None:
            try:
                cedarpy.PolicySet.from_str(t)
            except ValueError as e:
                return str(e)
            return None

        line, col = position(text, locate_parse_error(text, parse))
        raise PolicyError([Problem(name, line, col, f"syntax error: {exc}")]) from None


def generate_server_actions(
    server_uri: str, scopes: Iterable[str], tools: Iterable[str | Mapping[str, Any]] | None = None
) -> str:
    """Cedar entities (JSON) declaring an MCP server and the scopes it offers.

    Save the output as `servers/<name>.entities.json`. The loader then knows the server's scopes,
    and `check` rejects any policy on that server that names a scope the server does not offer.
    `tools` is the server's `tools/list` result (tool objects with a "name", or plain names);
    it becomes the server's `tools` attribute.
    """
    names: list[str] | None = None
    if tools is not None:
        names = [t if isinstance(t, str) else str(t["name"]) for t in tools]
    ents = server_entities(server_uri, sorted(set(scopes)), names)
    return json.dumps(ents, indent=2) + "\n"


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Textual differences (policy ids) and, when Cedar's analysis is available, its semantic verdict."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    semantic_available: bool
    semantic: str  # the analysis answer, or "not available: <why>"

    def __str__(self) -> str:
        lines = [f"+ {p}" for p in self.added] + [f"- {p}" for p in self.removed] + [f"~ {p}" for p in self.changed]
        lines = lines or ["no policy added, removed or changed"]
        lines.append(f"semantic comparison: {self.semantic}")
        return "\n".join(lines)


def diff(old: PolicyBundle, new: PolicyBundle) -> DiffResult:
    """Compare two bundles: policy ids added/removed/changed, plus Cedar's semantic comparison if present."""
    canon_old = {k: json.dumps(v, sort_keys=True) for k, v in old.est.items()}
    canon_new = {k: json.dumps(v, sort_keys=True) for k, v in new.est.items()}
    added = tuple(sorted(canon_new.keys() - canon_old.keys()))
    removed = tuple(sorted(canon_old.keys() - canon_new.keys()))
    changed = tuple(sorted(k for k in canon_old.keys() & canon_new.keys() if canon_old[k] != canon_new[k]))
    compare = getattr(cedarpy, "compare_policy_sets", None)
    if compare is None:
        version = _cedarpy_version()
        why = (
            f"not available: cedarpy {version} has no compare_policy_sets "
            "(Cedar's symbolic analysis needs a cedarpy build with the CVC5 solver)"
        )
        return DiffResult(added, removed, changed, False, why)
    try:  # pragma: no cover - only with an analysis-enabled cedarpy build
        answer = compare(_text(old), _text(new), old.schema_text)
    except Exception as exc:  # pragma: no cover
        return DiffResult(added, removed, changed, False, f"not available: {exc}")
    return DiffResult(added, removed, changed, True, str(answer))  # pragma: no cover


def _text(bundle: PolicyBundle) -> str:
    return "\n".join(bundle.sources[name] for name in sorted(bundle.sources))


def _cedarpy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cedarpy")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


@dataclass(frozen=True, slots=True)
class ExampleResult:
    file: str
    expected: str  # "ALLOW" or "DENY"
    actual: str
    policies: tuple[str, ...]
    errors: tuple[str, ...]
    failure: str | None

    @property
    def passed(self) -> bool:
        return self.failure is None


def _uid(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {"type": str(value["type"]), "id": str(value["id"])}
    type_, _, rest = str(value).rpartition("::")
    return {"type": type_, "id": json.loads(rest)}


def run_example(bundle: PolicyBundle, path: Path, expected: str) -> ExampleResult:
    """Evaluate one ALLOW/DENY example file against the bundle."""
    name = f"{expected}/{path.name}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return ExampleResult(name, expected, "ERROR", (), (str(exc),), f"cannot evaluate: {exc}")
    return run_example_doc(bundle, name, expected, doc)


def run_example_doc(bundle: PolicyBundle, name: str, expected: str, doc: Any) -> ExampleResult:
    """Evaluate one parsed example (``principal``, ``resource``, optional ``action``, ``context``,
    ``entities``, ``expect_policies``); a request Cedar cannot evaluate is an ``ERROR`` result."""
    try:
        resource = _uid(doc["resource"])
        extra: list[dict[str, Any]] = list(doc.get("entities", []))
        if resource["type"].endswith("::Scope") and "#" in resource["id"]:
            uri, _, scope = resource["id"].rpartition("#")
            given = {(e["uid"]["type"], e["uid"]["id"]) for e in extra} | set(bundle.static_uids)
            extra += [e for e in server_entities(uri, [scope]) if (e["uid"]["type"], e["uid"]["id"]) not in given]
        ents = bundle.entities.with_added_json_str(json.dumps(extra), bundle.schema) if extra else bundle.entities
        request = {
            "principal": _uid(doc["principal"]),
            "action": _uid(doc.get("action", 'Authz::Action::"obtain_scope"')),
            "resource": resource,
            "context": json.dumps(doc.get("context", {})),
        }
        result = cedarpy.is_authorized(request, bundle.policy_set, ents, bundle.schema)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return ExampleResult(name, expected, "ERROR", (), (str(exc),), f"cannot evaluate: {exc}")
    actual = "ALLOW" if result.allowed else "DENY"
    ids = tuple(sorted(result.diagnostics.reasons))
    errors = tuple(result.diagnostics.errors)
    failure = None
    if actual != expected:
        failure = f"expected {expected}, got {actual}"
    elif "expect_policies" in doc and sorted(doc["expect_policies"]) != list(ids):
        failure = f"expected deciding policies {sorted(doc['expect_policies'])}, got {list(ids)}"
    elif errors:
        failure = f"evaluation errors: {list(errors)}"
    return ExampleResult(name, expected, actual, ids, errors, failure)


def _uid_problem(doc: Mapping[str, Any], key: str) -> str | None:
    """Why ``doc[key]`` is not an entity reference (``'Type::"id"'`` or ``{"type", "id"}``), or None.
    ``action`` may be absent (it defaults to ``obtain_scope``); ``principal`` and ``resource`` may not."""
    if key not in doc:
        return None if key == "action" else 'missing (an entity reference such as Authz::Agent::"agt_1")'
    value = doc[key]
    if isinstance(value, Mapping):
        ok = isinstance(value.get("type"), str) and isinstance(value.get("id"), str)
        return None if ok else 'an object reference needs string "type" and "id"'
    if isinstance(value, str):
        type_, sep, rest = value.rpartition("::")
        try:
            ident = json.loads(rest) if sep and type_ else None
        except ValueError:
            ident = None
        return None if isinstance(ident, str) else f'{value!r} is not Type::"id"'
    return 'an entity reference is a string Type::"id" or an object {"type", "id"}'


def parse_examples(tests: Mapping[str, str | Mapping[str, Any]]) -> list[tuple[str, str, Any]]:
    """``{"ALLOW/name.json": JSON text or object}`` as ``(name, expected, doc)``, sorted by name. Raises
    `PolicyError` naming every bad entry (``tests/<name>``, with the line and column of a JSON error)."""
    out: list[tuple[str, str, Any]] = []
    problems: list[Problem] = []
    for name in sorted(tests):
        expected, sep, rest = name.partition("/")
        file = f"tests/{name}"
        if expected not in ("ALLOW", "DENY") or not sep or not rest or "/" in rest:
            problems.append(Problem(file, 1, 1, 'a test is named "ALLOW/<name>" or "DENY/<name>"'))
            continue
        value = tests[name]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                problems.append(Problem(file, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}"))
                continue
        if not isinstance(value, Mapping):
            problems.append(Problem(file, 1, 1, "a test is a JSON object (principal, resource, context...)"))
            continue
        bad = [f"{k}: {why}" for k in ("principal", "resource", "action") if (why := _uid_problem(value, k))]
        if bad:
            problems.append(Problem(file, 1, 1, "; ".join(bad)))
            continue
        out.append((name, expected, dict(value)))
    if problems:
        raise PolicyError(problems)
    return out


def example_texts(directory: str | Path) -> dict[str, str]:
    """The ``tests/ALLOW`` and ``tests/DENY`` files of a policy directory, ``{"ALLOW/name.json": text}``."""
    return {f"{e}/{p.name}": p.read_text(encoding="utf-8") for p, e in example_files(directory)}


def run_examples(bundle: PolicyBundle, directory: str | Path) -> list[ExampleResult]:
    """Run every `tests/ALLOW/*.json` and `tests/DENY/*.json` under a policy directory."""
    root = Path(directory) / "tests"
    out: list[ExampleResult] = []
    for expected in ("ALLOW", "DENY"):
        out.extend(run_example(bundle, p, expected) for p in sorted((root / expected).glob("*.json")))
    return out


def example_files(directory: str | Path) -> Sequence[tuple[Path, str]]:
    root = Path(directory) / "tests"
    return [(p, e) for e in ("ALLOW", "DENY") for p in sorted((root / e).glob("*.json"))]
