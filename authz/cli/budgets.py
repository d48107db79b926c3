"""``authz budgets``: create, list, show the status of, and delete budgets.

Works on the database directly, like ``authz agents``. A running server picks up a change within its
definition cache ttl (5 s); the admin API (``/api/v1/.../budgets``) invalidates at once.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from authz.budgets.model import Budget, BudgetError
from authz.budgets.service import BudgetService
from authz.cli.output import table
from authz.context import Context


def register(sub: Any) -> None:
    b = sub.add_parser("budgets", help="manage budgets of agents, teams and workflows").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = b.add_parser("create", help="create a budget", description="Create a budget on one subject.")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", metavar="ID")
    who.add_argument("--team", metavar="ID")
    who.add_argument("--workflow", metavar="ID")
    create.add_argument("--metric", choices=["calls", "tokens", "cost"], required=True)
    create.add_argument("--limit", type=int, required=True, help="in the metric's unit (cost: micro-units)")
    create.add_argument("--currency", help="ISO 4217 code, for --metric cost")
    create.add_argument("--period", choices=["day", "week", "month", "lifetime"], default="month")
    create.add_argument("--timezone", default="UTC", help="IANA time zone of day/week/month boundaries")
    create.add_argument("--soft", action="store_true", help="count and alert only, never refuse")
    create.add_argument("--threshold", type=int, action="append", default=None, help="alert percent (repeatable)")
    create.add_argument("--webhook", action="append", default=[], metavar="URL", help="threshold webhook (repeatable)")
    create.set_defaults(func=_run(cmd_create))
    ls = b.add_parser("list", help="list budgets with their current status")
    ls.add_argument("--agent", metavar="ID")
    ls.add_argument("--team", metavar="ID")
    ls.add_argument("--workflow", metavar="ID")
    ls.set_defaults(func=_run(cmd_list))
    st = b.add_parser("status", help="spent, reserved, remaining and period end of a budget")
    st.add_argument("budget_id")
    st.set_defaults(func=_run(cmd_status))
    rm = b.add_parser("delete", help="delete a budget")
    rm.add_argument("budget_id")
    rm.set_defaults(func=_run(cmd_delete))


def _service(ctx: Context) -> BudgetService:
    if ctx.budgets is not None:
        return ctx.budgets
    from authz import services

    engine = ctx.store.engine  # type: ignore[attr-defined]
    return services.budget_service(ctx.settings, engine, ctx.keyring)


def _run(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from authz.cli.admin import _ctx

        ctx = _ctx()
        try:
            _resolve_subject(ctx, args)
            args.audit = ctx.audit  # operator changes are records (actor "cli")
            return int(fn(_service(ctx), args))
        except (BudgetError, LookupError) as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        finally:
            ctx.audit.flush()

    return run


def _resolve_subject(ctx: Context, args: argparse.Namespace) -> None:
    """``--agent`` must name an existing agent and ``--team`` an existing team (by id or name; budgets
    key on the team's id, as the token's ``team`` claim does). Raises LookupError saying what to run."""
    agent = getattr(args, "agent", None)
    if agent and ctx.store.get_agent(agent) is None:
        raise LookupError(f"no agent {agent!r}: `authz agents list` shows the agents (budgets key on the agent id)")
    team = getattr(args, "team", None)
    if team:
        found = ctx.store.get_team(team) or ctx.store.get_team_by_name(team)
        if found is None:
            raise LookupError(f"no team {team!r}: `authz teams list` shows the teams")
        args.team = found.id


def _subject(args: argparse.Namespace) -> tuple[str, str] | None:
    for kind in ("agent", "team", "workflow"):
        value = getattr(args, kind, None)
        if value:
            return kind, value
    return None


def _when(ts: float | None) -> str:
    return "never" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _limit(b: Budget) -> str:
    return f"{b.limit} {b.currency} micro" if b.metric == "cost" else str(b.limit)


def cmd_create(svc: BudgetService, args: argparse.Namespace) -> int:
    subject = _subject(args)
    assert subject is not None
    budget, hooks = svc.store.create(
        subject[0],
        subject[1],
        metric=args.metric,
        limit=args.limit,
        period=args.period,
        timezone=args.timezone,
        hard=not args.soft,
        thresholds=args.threshold if args.threshold is not None else [50, 80, 100],
        currency=args.currency,
        webhooks=[(url, None) for url in args.webhook],
    )
    args.audit.operator_change("budget", "created", actor="cli", target=budget.id, subject_type=budget.subject_type)
    print(f"budget_id: {budget.id}")
    print(f"subject: {budget.subject_type} {budget.subject_id}")
    print(f"limit: {_limit(budget)} {budget.metric} per {budget.period} ({'hard' if budget.hard else 'soft'})")
    for h in hooks:
        print(f"webhook: {h.endpoint.url} secret: {h.secret}  (shown once)")
    return 0


def cmd_list(svc: BudgetService, args: argparse.Namespace) -> int:
    subject = _subject(args)
    budgets = svc.store.list_budgets(*(subject or (None, None)))
    if not budgets:
        print("no budgets")
        return 0
    rows = [["ID", "SUBJECT", "METRIC", "LIMIT", "PERIOD", "CAP", "SPENT", "RESERVED", "REMAINING", "PERIOD END"]]
    for b in budgets:
        s = svc.status(b)
        rows.append(
            [b.id, f"{b.subject_type}:{b.subject_id}", b.metric, _limit(b), b.period, "hard" if b.hard else "soft",
             str(s.spent), str(s.reserved), str(s.remaining), _when(s.period_end)]
        )  # fmt: skip
    table(rows)
    return 0


def cmd_status(svc: BudgetService, args: argparse.Namespace) -> int:
    b = svc.store.get(args.budget_id)
    if b is None:
        print(f"authz: no budget {args.budget_id}", file=sys.stderr)
        return 1
    s = svc.status(b)
    rows = [
        ["budget", b.id],
        ["subject", f"{b.subject_type} {b.subject_id}"],
        ["metric", b.metric + (f" ({b.currency} micro-units)" if b.currency else "")],
        ["limit", f"{b.limit} ({'hard' if b.hard else 'soft'})"],
        ["period", f"{b.period} {b.timezone} [{s.period_key}]"],
        ["spent", str(s.spent)],
        ["reserved", str(s.reserved)],
        ["remaining", str(s.remaining)],
        ["period start", _when(s.period_start)],
        ["period end", _when(s.period_end)],
        ["thresholds", " ".join(f"{t}%" for t in b.thresholds) or "-"],
    ]
    table(rows)
    return 0


def cmd_delete(svc: BudgetService, args: argparse.Namespace) -> int:
    if not svc.store.delete(args.budget_id):
        print(f"authz: no budget {args.budget_id}", file=sys.stderr)
        return 1
    args.audit.operator_change("budget", "deleted", actor="cli", target=args.budget_id)
    print(f"deleted {args.budget_id}")
    return 0
