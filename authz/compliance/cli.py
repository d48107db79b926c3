"""``authz oversight`` (tools that need a person's approval, the approvals), ``authz incidents`` (AI Act
Art. 73 records with their deadline) and ``authz ai-act`` (the
per-agent AI Act record). Changes are audit records with ``actor=cli``; errors are one line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from authz.compliance import ai_act, approvals, incidents
from authz.context import Context
from authz.identity.agents.errors import AgentError

ACTOR = "cli"


def register(sub: Any) -> None:
    o = sub.add_parser("oversight", help="human oversight (AI Act Art. 14): tools that need a person's approval")
    a = o.add_subparsers(dest="action", required=True)
    p = a.add_parser("rules", help="list the tools that need approval")
    p.add_argument("--resource")
    p.set_defaults(func=_run(lambda ctx, args: approvals.list_rules(ctx, args.resource)))
    p = a.add_parser("require", help="a tool of a registered resource needs a person's approval for each call")
    p.add_argument("resource", help="the resource URI (authz resources list)")
    p.add_argument("tool")
    p.add_argument("--min-risk", choices=ai_act.RISKS, help="only agents at or above this AI Act risk level")
    p.add_argument("--ttl", type=int, default=approvals.DEFAULT_TTL, help="seconds a request, then an approval, lasts")
    p.set_defaults(func=_run(lambda ctx, args: approvals.put_rule(
        ctx, args.resource, args.tool, min_risk=args.min_risk, ttl=args.ttl, actor=ACTOR)))  # fmt: skip
    p = a.add_parser("unrequire", help="delete a rule")
    p.add_argument("rule_id")
    p.set_defaults(func=_run(lambda ctx, args: approvals.delete_rule(ctx, args.rule_id, actor=ACTOR)))
    p = a.add_parser("approvals", help="list approval requests, newest first")
    p.add_argument("--status", choices=("pending", "approved", "rejected", "used", "refused", "expired"))
    p.set_defaults(func=_run(lambda ctx, args: approvals.list_approvals(ctx, args.status)))
    p = a.add_parser("decide", help="approve or reject a request (again: an override)")
    p.add_argument("approval_id")
    p.add_argument("decision", choices=("approve", "reject"))
    p.add_argument("--reason")
    p.set_defaults(func=_run(lambda ctx, args: approvals.decide(
        ctx, args.approval_id, args.decision == "approve", actor=ACTOR, reason=args.reason)))  # fmt: skip

    r = sub.add_parser(
        "ai-act", help="an agent's AI Act record: risk level, Annex III area, purpose, provider, deployer"
    )
    a = r.add_subparsers(dest="action", required=True)
    p = a.add_parser("show")
    p.add_argument("agent_id")
    p.set_defaults(func=_run(_show))
    p = a.add_parser("set", help="create or replace the record (every field; audited)")
    p.add_argument("agent_id")
    p.add_argument("--risk", required=True, choices=ai_act.RISKS)
    p.add_argument("--annex-iii-area", choices=sorted(ai_act.ANNEX_III), help="required when --risk high")
    p.add_argument("--purpose", required=True, help="intended purpose")
    p.add_argument("--provider", required=True)
    p.add_argument("--deployer", required=True)
    p.set_defaults(func=_run(_set))


def register_incidents(sub: Any) -> None:
    i = sub.add_parser("incidents", help="serious incidents (AI Act Art. 73) with their reporting deadline")
    a = i.add_subparsers(dest="action", required=True)
    p = a.add_parser("list", help="incidents, earliest deadline first")
    p.add_argument("--status", choices=("open", "closed"))
    p.set_defaults(func=_run(lambda ctx, args: incidents.list_incidents(ctx, args.status)))
    p = a.add_parser("show")
    p.add_argument("incident_id")
    p.set_defaults(func=_run(lambda ctx, args: incidents.get_incident(ctx, args.incident_id)))
    for name in ("open", "update"):
        p = a.add_parser(name, help="open an incident" if name == "open" else "change fields of an open incident")
        if name == "update":
            p.add_argument("incident_id")
            p.add_argument("--reported-at", type=_when, help="when the report reached the authority (ISO 8601)")
        p.add_argument("--title", required=name == "open")
        p.add_argument("--kind", choices=sorted(incidents.CLOCK_DAYS), help="the clock: serious 15 d, death 10 d, "
                       "widespread / critical-infrastructure 2 d")  # fmt: skip
        p.add_argument("--agent", action="append", dest="agents", help="an agent concerned (repeat)")
        p.add_argument("--from-seq", type=int, dest="seq_from", help="first audit record concerned")
        p.add_argument("--to-seq", type=int, dest="seq_to", help="last audit record concerned")
        p.add_argument("--description")
        p.add_argument("--aware-at", type=_when, help="when you became aware (ISO 8601; default now)")
        p.set_defaults(func=_run(_open if name == "open" else _update))
    p = a.add_parser("close")
    p.add_argument("incident_id")
    p.add_argument("--resolution")
    p.set_defaults(func=_run(lambda ctx, args: incidents.close_incident(
        ctx, args.incident_id, actor=ACTOR, resolution=args.resolution)))  # fmt: skip


def _when(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


_FIELDS = ("title", "kind", "agents", "seq_from", "seq_to", "description", "aware_at", "reported_at")


def _open(ctx: Context, args: argparse.Namespace) -> Any:
    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    return incidents.open_incident(ctx, **given, actor=ACTOR)


def _update(ctx: Context, args: argparse.Namespace) -> Any:
    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    return incidents.update_incident(ctx, args.incident_id, given, actor=ACTOR)


def _show(ctx: Context, args: argparse.Namespace) -> Any:
    record = ai_act.get_record(ctx, args.agent_id)
    if record is None:
        raise AgentError(f"agent {args.agent_id!r} has no AI Act record: set one with `authz ai-act set`")
    return record.as_dict()


def _set(ctx: Context, args: argparse.Namespace) -> Any:
    data = {"risk": args.risk, "annex_iii_area": args.annex_iii_area, "intended_purpose": args.purpose,
            "provider": args.provider, "deployer": args.deployer}  # fmt: skip
    return ai_act.put_record(ctx, args.agent_id, data, actor=ACTOR).as_dict()


def _run(fn: Callable[[Context, argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from authz.cli.admin import _ctx

        ctx = _ctx()
        try:
            result = fn(ctx, args)
        except AgentError as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        finally:
            ctx.audit.flush()
        if result is not None:
            print(json.dumps(result, indent=1))
        return 0

    return command
