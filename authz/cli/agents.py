"""``authz agents``, ``authz teams`` and ``authz admin-client``: agent identities from the command line.

The commands call the same lifecycle functions as the admin API (``authz.identity.agents``), so the rules,
the 409 conflicts and the audit trail are the same; the audit ``actor`` is ``cli``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from authz.admin.bootstrap import DEFAULT_CLIENT_SCOPES, admin_resource_uri, create_admin_client, ensure_admin_resource
from authz.cli.output import table
from authz.context import Context
from authz.identity.agents import credentials as creds
from authz.identity.agents import lifecycle as lc
from authz.identity.agents.errors import AgentError, Invalid
from authz.identity.agents.lifecycle import STATUSES, Agents
from authz.identity.agents.validation import DEFAULT_OVERLAP
from authz.storage.models import Agent, AgentCredential

ACTOR = "cli"


def register(sub: Any) -> None:
    ag = sub.add_parser(
        "agents", help="manage agent identities and their credentials", description="Agent identities: each agent "
        "is an OAuth client (client_id = agent id) with its own credentials and lifecycle.",
    )  # fmt: skip
    a = ag.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = a.add_parser("create", help="create an agent", description="Create an agent (status active).")
    create.add_argument("name", help="display name")
    create.add_argument("--team", help="team id or name")
    create.add_argument("--owner", help="username (or user id) of the human accountable for the agent")
    create.add_argument("--description", default="", help="free text")
    create.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    create.set_defaults(func=_run(cmd_create))
    ls = a.add_parser("list", help="list agents", description="List agents in creation order.")
    ls.add_argument("--team", help="only this team (id or name)")
    ls.add_argument("--status", choices=STATUSES, help="only agents in this status")
    ls.set_defaults(func=_run(cmd_list))
    show = a.add_parser("show", help="show an agent and its credentials")
    show.add_argument("agent_id")
    show.set_defaults(func=_run(cmd_show))
    for name, helptext in (
        ("suspend", "suspend an agent: its live tokens die at once, new ones are refused"),
        ("reinstate", "reinstate a suspended agent: new tokens work, old ones stay dead"),
        ("revoke", "revoke an agent permanently (and all its credentials)"),
    ):
        p = a.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("agent_id")
        p.add_argument("--reason", help="recorded in the audit trail")
        p.set_defaults(func=_run(cmd_transition), transition=name)

    c = a.add_parser("credentials", help="issue, rotate and revoke an agent's credentials").add_subparsers(
        dest="cred_action", required=True, metavar="ACTION"
    )
    issue = c.add_parser(
        "issue", help="issue a credential (a secret is printed once)",
        description="Issue a credential: a generated secret (printed once), a public key (private_key_jwt, "
        "recommended) or the URL of the agent's JWK Set.",
    )  # fmt: skip
    issue.add_argument("agent_id")
    issue.add_argument("--kind", choices=creds.KINDS, default="secret", help="credential kind (default secret)")
    issue.add_argument("--jwk-file", help="JSON file with the public JWK (--kind public_key)")
    issue.add_argument("--url", help="https URL of the JWK Set (--kind jwks_uri)")
    issue.set_defaults(func=_run(cmd_issue))
    rotate = c.add_parser(
        "rotate", help="rotate a credential: a new one now, the old one ends after the overlap",
        description="Issue a new credential of the same kind; the old one keeps working for --overlap seconds.",
    )  # fmt: skip
    rotate.add_argument("agent_id")
    rotate.add_argument("credential_id")
    rotate.add_argument(
        "--overlap", type=int, default=DEFAULT_OVERLAP, help=f"seconds both work (default {DEFAULT_OVERLAP}; 0 = none)"
    )
    rotate.add_argument("--jwk-file", help="the new public JWK (public_key credentials)")
    rotate.add_argument("--url", help="the new JWK Set URL (jwks_uri credentials)")
    rotate.set_defaults(func=_run(cmd_rotate))
    revoke = c.add_parser("revoke", help="revoke a credential at once")
    revoke.add_argument("agent_id")
    revoke.add_argument("credential_id")
    revoke.set_defaults(func=_run(cmd_revoke_credential))
    c.add_parser("list", help="list an agent's credentials").add_argument("agent_id")
    c.choices["list"].set_defaults(func=_run(cmd_list_credentials))

    t = sub.add_parser("teams", help="manage teams of agents").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    tc = t.add_parser("create", help="create a team")
    tc.add_argument("name")
    tc.add_argument("--description", default="")
    tc.set_defaults(func=_run(cmd_team_create))
    t.add_parser("list", help="list teams").set_defaults(func=_run(cmd_team_list))

    ac = sub.add_parser("admin-client", help="clients of the admin API (/api/v1)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    acc = ac.add_parser(
        "create", help="register a client that can get admin API tokens (secret printed once)",
        description="Register a confidential client_credentials client allowed only the admin API resource.",
    )  # fmt: skip
    acc.add_argument("--name", default="admin", help="display name (default admin)")
    acc.add_argument("--scopes", default=" ".join(DEFAULT_CLIENT_SCOPES), help="space-separated admin scopes")
    acc.set_defaults(func=_run(cmd_admin_client_create, ensure_admin=True))


def _ctx() -> Context:
    from authz.cli.admin import _ctx as admin_ctx

    return admin_ctx()


def _run(fn: Callable[[Context, argparse.Namespace], int], ensure_admin: bool = False) -> Callable[..., int]:
    """Build the context, run, flush the audit trail; lifecycle errors are one clear line and exit 1."""

    def run(args: argparse.Namespace) -> int:
        ctx = _ctx()
        if ensure_admin:
            ensure_admin_resource(ctx.store, ctx.settings)
        try:
            return fn(ctx, args)
        except Invalid as exc:
            for field, message in exc.errors:
                print(f"authz: {field}: {message}", file=sys.stderr)
            return 1
        except (AgentError, ValueError) as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        finally:
            ctx.audit.flush()

    return run


def _deps(ctx: Context) -> Agents:
    return Agents.from_context(ctx)


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else ""


def _print_agent(agent: Agent) -> None:
    for label, value in (
        ("id", agent.id), ("name", agent.name), ("status", agent.status), ("team", agent.team_id or ""),
        ("owner", agent.owner or ""), ("tags", " ".join(agent.tags or ())), ("description", agent.description),
        ("created", _when(agent.created_at)), ("status since", _when(agent.status_changed_at)),
    ):  # fmt: skip
        print(f"{label + ':':14}{value}")


def _cred_row(c: AgentCredential) -> list[str]:
    detail = str(c.public_jwk.get("kid", "")) if c.public_jwk else (c.jwks_uri or "")
    return [c.id, c.kind, creds.state(c, time.time()), _when(c.created_at), _when(c.expires_at), detail]


def _read_jwk(path: str | None) -> Any:
    if path is None:
        return None
    with open(path) as fh:
        return json.load(fh)


def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    agent = lc.create_agent(
        _deps(ctx), name=args.name, team=args.team, owner=args.owner, description=args.description,
        tags=args.tag, actor=ACTOR,
    )  # fmt: skip
    _print_agent(agent)
    return 0


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    team_id = None
    if args.team:
        team = lc.find_team(_deps(ctx), args.team)
        if team is None:
            print(f"authz: no team {args.team!r}", file=sys.stderr)
            return 1
        team_id = team.id
    rows: list[list[str]] = []
    after = None
    while batch := ctx.store.list_agents(team_id=team_id, status=args.status, after=after, limit=500):
        rows += [[a.id, a.name, a.status, a.team_id or "", " ".join(a.tags or ())] for a in batch]
        after = (batch[-1].created_at, batch[-1].id)
    table([["ID", "NAME", "STATUS", "TEAM", "TAGS"], *rows])
    return 0


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    agent = lc.get_agent(_deps(ctx), args.agent_id)
    _print_agent(agent)
    print()
    creds = [_cred_row(c) for c in ctx.store.list_credentials(agent.id)]
    table([["CREDENTIAL", "KIND", "STATE", "CREATED", "EXPIRES", "KID/URL"], *creds])
    return 0


def cmd_transition(ctx: Context, args: argparse.Namespace) -> int:
    fn = {"suspend": lc.suspend_agent, "reinstate": lc.reinstate_agent, "revoke": lc.revoke_agent}[args.transition]
    agent = fn(_deps(ctx), args.agent_id, actor=ACTOR, reason=args.reason)
    print(f"agent {agent.id} is {agent.status}")
    return 0


def cmd_issue(ctx: Context, args: argparse.Namespace) -> int:
    if args.kind == "public_key" and not args.jwk_file:
        raise ValueError("--kind public_key needs --jwk-file")
    if args.kind == "jwks_uri" and not args.url:
        raise ValueError("--kind jwks_uri needs --url")
    issued = creds.issue_credential(
        _deps(ctx), args.agent_id, kind=args.kind, jwk=_read_jwk(args.jwk_file), jwks_uri=args.url, actor=ACTOR
    )
    _print_issued(issued, args.agent_id)
    return 0


def cmd_rotate(ctx: Context, args: argparse.Namespace) -> int:
    new, old = creds.rotate_credential(
        _deps(ctx), args.agent_id, args.credential_id, overlap=args.overlap, jwk=_read_jwk(args.jwk_file),
        jwks_uri=args.url, actor=ACTOR,
    )  # fmt: skip
    _print_issued(new, args.agent_id)
    print(f"old credential {old.id} works until {_when(old.expires_at)}")
    return 0


def _print_issued(issued: creds.Issued, agent_id: str) -> None:
    print(f"credential:    {issued.credential.id} ({issued.credential.kind})")
    print(f"client_id:     {agent_id}")
    if issued.secret:
        print(f"client_secret: {issued.secret}   (shown once: store it now)")


def cmd_revoke_credential(ctx: Context, args: argparse.Namespace) -> int:
    cred = creds.revoke_credential(_deps(ctx), args.agent_id, args.credential_id, actor=ACTOR)
    print(f"credential {cred.id} is revoked")
    return 0


def cmd_list_credentials(ctx: Context, args: argparse.Namespace) -> int:
    rows = creds.list_credentials(_deps(ctx), args.agent_id)
    table([["CREDENTIAL", "KIND", "STATE", "CREATED", "EXPIRES", "KID/URL"], *(_cred_row(c) for c in rows)])
    return 0


def cmd_team_create(ctx: Context, args: argparse.Namespace) -> int:
    team = lc.create_team(_deps(ctx), name=args.name, description=args.description, actor=ACTOR)
    print(f"team {team.name} ({team.id})")
    return 0


def cmd_team_list(ctx: Context, _args: argparse.Namespace) -> int:
    table([["ID", "NAME", "DESCRIPTION"], *([t.id, t.name, t.description] for t in ctx.store.list_teams())])
    return 0


def cmd_admin_client_create(ctx: Context, args: argparse.Namespace) -> int:
    scopes = args.scopes.replace(",", " ").split()
    reg = create_admin_client(ctx.store, ctx.keyring, ctx.settings, name=args.name, scopes=scopes)
    ctx.audit.record("client.created", client_id=reg.client_id, actor=ACTOR, admin=True, scope=" ".join(scopes))
    resource = admin_resource_uri(ctx.settings)
    print(f"client_id:     {reg.client_id}")
    print(f"client_secret: {reg.client_secret}   (shown once: store it now)")
    print(f"resource:      {resource}")
    print(f"scopes:        {' '.join(scopes)}")
    print("get a token:")
    curl = [
        "curl", "-s", "-u", f"{reg.client_id}:{reg.client_secret}", "-d", "grant_type=client_credentials",
        "--data-urlencode", f"resource={resource}", "--data-urlencode", f"scope={' '.join(scopes)}",
        ctx.settings.endpoint("/token"),
    ]  # fmt: skip
    print("  " + shlex.join(curl))
    return 0
