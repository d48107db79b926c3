"""`python -m policies`: check, test, fmt, explain, diff and generate for policy authors.

Exit codes: 0 success, 1 problems found (or tests failed), 2 usage error, 3 analysis not available.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import DEFAULT_DIR, Context, PolicyError, Principal, Request, diff, fmt, generate_server_actions, load
from .loader import read_sources
from .model import PrincipalKind
from .starter import server_slug, write_starter
from .tools import example_texts, parse_examples, run_example_doc

_KINDS: dict[str, PrincipalKind] = {"Agent": "agent", "User": "user", "Client": "client"}


def _fail(directory: Path, exc: PolicyError) -> int:
    for p in exc.problems:
        print(f"{directory / p.file}:{p.line}:{p.col}: {p.message}", file=sys.stderr)
    return 1


def cmd_check(args: argparse.Namespace) -> int:
    try:
        bundle = load(args.dir)
    except PolicyError as exc:
        return _fail(args.dir, exc)
    print(f"ok: {len(bundle.policy_ids)} policies in {len(bundle.sources)} files, valid and formatted")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Run the examples; a test file that is not a JSON object is one ``file:line:col: message`` line
    (the parser of ``POST /api/v1/policies/test``), exit 1, before anything runs."""
    try:
        bundle = load(args.dir, check_format=False)
        cases = parse_examples(example_texts(args.dir))
    except PolicyError as exc:
        return _fail(args.dir, exc)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.dir / 'tests'}: cannot read the tests: {exc}", file=sys.stderr)
        return 1
    results = [run_example_doc(bundle, name, expected, doc) for name, expected, doc in cases]
    for r in results:
        why = ", ".join(r.policies) or "no policy (default deny)"
        status = "PASS" if r.passed else "FAIL"
        print(f"{status} {r.file}: {r.actual} by {why}" + (f" -- {r.failure}" if r.failure else ""))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


def cmd_fmt(args: argparse.Namespace) -> int:
    _, sources, _ = read_sources(args.dir)
    status = 0
    for name, text in sources.items():
        try:
            formatted = fmt(text, name=name)
        except PolicyError as exc:
            status = _fail(args.dir, exc)
            continue
        if formatted == text:
            continue
        if args.check:
            print(f"{args.dir / name}: not formatted", file=sys.stderr)
            status = 1
        else:
            (args.dir / name).write_text(formatted, encoding="utf-8")
            print(f"formatted {args.dir / name}")
    return status


class UsageError(Exception):
    """A bad argument value: printed as one line, exit status 2."""


def _principal(args: argparse.Namespace) -> Principal:
    type_, _, rest = args.principal.rpartition("::")
    kind = _KINDS.get(type_.rsplit("::", 1)[-1])
    try:
        ident = json.loads(rest) if rest.startswith('"') else None
    except json.JSONDecodeError:
        ident = None
    if kind is None or not isinstance(ident, str) or not ident:
        raise UsageError(
            f'--principal must be Agent::"ID", User::"USERNAME" or Client::"CLIENT_ID" (quote the id), '
            f"got {args.principal}; try: --principal 'Agent::\"agt_1\"'"
        )
    return Principal(kind, ident, team=args.team, owner=args.owner, tags=args.tag, groups=args.group)


def _when(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--time must be ISO 8601, e.g. 2025-06-03T10:00:00Z, got {text}") from None


def cmd_explain(args: argparse.Namespace) -> int:
    try:
        bundle = load(args.dir, check_format=False)
    except PolicyError as exc:
        return _fail(args.dir, exc)
    when = _when(args.time)
    context = Context(
        grant_type=args.grant_type,
        delegated=args.delegated,
        user=args.user,
        user_groups=args.user_group,
        act_depth=args.act_depth,
        workflow=args.workflow,
        time=when,
    )
    request = Request(_principal(args), args.client_id, args.resource, args.scopes.split(), context)
    print(bundle.explain(request))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        old, new = load(args.old, check_format=False), load(args.new, check_format=False)
    except PolicyError as exc:
        print(f"cannot load: {exc}", file=sys.stderr)
        return 1
    result = diff(old, new)
    print(result)
    return 0 if result.semantic_available else 3


def cmd_generate(args: argparse.Namespace) -> int:
    tools: list[str] | None = None
    if args.tools_list:
        doc = json.loads(Path(args.tools_list).read_text(encoding="utf-8"))
        items = doc.get("tools", doc.get("result", {}).get("tools", [])) if isinstance(doc, dict) else doc
        tools = [t if isinstance(t, str) else t["name"] for t in items]
    sys.stdout.write(generate_server_actions(args.server, args.scopes.split(), tools))
    return 0


def cmd_starter(args: argparse.Namespace) -> int:
    scopes = args.scopes.replace(",", " ").split()
    if not scopes:
        raise UsageError('--scopes names the scopes the server offers, e.g. --scopes "notes:read notes:write"')
    slug = server_slug(args.server, args.name or "")
    try:
        written = write_starter(args.dir, args.server, scopes, slug)
    except FileExistsError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    except PolicyError as exc:
        return _fail(args.dir, exc)
    for path in written:
        print(f"wrote {path}")
    print(f"the set in {args.dir.resolve()} loads; {slug}.starter permits {' '.join(scopes)} to everyone: narrow it")
    return 0


def parser(prog: str = "python -m policies") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Tools for Cedar scope policies. DIR defaults to the embedded policy set.",
        epilog="Exit codes: 0 ok, 1 problems or failed examples, 2 usage, 3 semantic diff not available.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def with_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help="policy directory")

    sp = sub.add_parser("check", help="parse, validate against the schema, check formatting")
    with_dir(sp)
    sp.set_defaults(fn=cmd_check)
    sp = sub.add_parser("test", help="run tests/ALLOW/*.json and tests/DENY/*.json; show deciding policies")
    with_dir(sp)
    sp.set_defaults(fn=cmd_test)
    sp = sub.add_parser("fmt", help="format .cedar files in place (or --check)")
    sp.add_argument("--check", action="store_true", help="only report unformatted files (exit 1)")
    with_dir(sp)
    sp.set_defaults(fn=cmd_fmt)
    sp = sub.add_parser("explain", help="what would be granted for a principal, server and scopes, and why")
    sp.add_argument("--principal", required=True, help='e.g. Agent::"agt_1", User::"alice", Client::"cli_1"')
    sp.add_argument("--resource", required=True, help="MCP server URI")
    sp.add_argument("--scopes", required=True, help='space-separated, e.g. "tools:read tools:write"')
    sp.add_argument("--team", help="agent's team, by name (as `authz teams list` shows it)")
    sp.add_argument("--owner", help="agent's owner, by username")
    sp.add_argument("--tag", action="append", default=[], help="agent tag (repeatable)")
    sp.add_argument("--group", action="append", default=[], help="user principal's group (repeatable)")
    sp.add_argument("--delegated", action="store_true", help="the token acts for a user")
    sp.add_argument("--user", help="the delegating user, by username")
    sp.add_argument("--user-group", action="append", default=[], help="delegating user's group (repeatable)")
    sp.add_argument("--workflow")
    sp.add_argument("--act-depth", type=int, default=0)
    sp.add_argument("--grant-type", default="client_credentials")
    sp.add_argument("--client-id", default="cli_explain")
    sp.add_argument("--time", help="ISO 8601 (default: now, UTC)")
    sp.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="policy directory")
    sp.set_defaults(fn=cmd_explain)
    sp = sub.add_parser("diff", help="compare two policy directories (exit 3 if semantic analysis is unavailable)")
    sp.add_argument("old", type=Path)
    sp.add_argument("new", type=Path)
    sp.set_defaults(fn=cmd_diff)
    sp = sub.add_parser("generate", help="print Cedar entities for an MCP server (save as servers/NAME.entities.json)")
    sp.add_argument("--server", required=True, help="MCP server URI")
    sp.add_argument("--scopes", required=True, help="space-separated scopes the server offers")
    sp.add_argument("--tools-list", help="a JSON file holding the server's tools/list result")
    sp.set_defaults(fn=cmd_generate)
    sp = sub.add_parser(
        "starter",
        help="write a starter policy for an MCP server into DIR (seeded with the schema and base rules)",
        description="Write servers/NAME.cedar (every scope of the server to every principal; narrow it) and "
        "servers/NAME.entities.json into DIR, copying the schema, base.cedar and entities.json first when DIR "
        "holds no policy set; then load the whole set to prove it valid. Run the AS with AUTHZ_POLICIES=DIR.",
    )
    sp.add_argument("--server", required=True, help="MCP server URI (as registered with `authz resources add`)")
    sp.add_argument("--scopes", required=True, help="space-separated scopes the server offers")
    sp.add_argument("--name", help="file and policy-id name (default: from the server's host)")
    sp.add_argument("dir", type=Path, help="the policy directory to write (created if missing)")
    sp.set_defaults(fn=cmd_starter)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m policies") -> int:
    args = parser(prog).parse_args(argv)
    try:
        return int(args.fn(args))
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
