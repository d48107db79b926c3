"""``authz billing``: customers, plans, subscriptions, credits, invoice previews and invoices.

Works on the database directly, like ``authz budgets``; every command has ``--help``. Mistakes
print one line saying what is wrong (and the field) and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from authz.billing.errors import BillingError
from authz.billing.examples import SHAPES
from authz.billing.export import invoice_csv
from authz.billing.money import MoneyError
from authz.billing.periods import iso, parse_instant
from authz.billing.service import BillingService
from authz.cli.output import table

ACTOR = "cli"


def register(sub: Any) -> None:
    b = sub.add_parser(
        "billing",
        help="customers, plans, subscriptions, credits, invoice previews and invoices",
        description="Bill customers for what their agents do (see docs/billing.md).",
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    c = b.add_parser("customer", help="create a customer", description="Create a billed customer.")
    c.add_argument("id", help="your own id for the customer (events name it)")
    c.add_argument("--name", required=True)
    c.add_argument("--currency", required=True, help="ISO 4217 code, e.g. USD")
    c.add_argument("--timezone", default="UTC", help="IANA time zone of calendar periods")
    c.add_argument("--agent", action="append", default=[], metavar="ID", help="bill this agent's events (repeatable)")
    c.add_argument("--team", action="append", default=[], metavar="ID", help="bill this team's agents (repeatable)")
    c.set_defaults(func=_run(cmd_customer))
    b.add_parser("customers", help="list customers").set_defaults(func=_run(cmd_customers))
    p = b.add_parser(
        "plan",
        help="create a plan (or add a version) from a JSON spec or a built-in example",
        description=f"Built-in examples: {', '.join(SHAPES)}.",
    )
    p.add_argument("id", help="plan code, e.g. hybrid")
    p.add_argument("--name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="a JSON plan version spec")
    src.add_argument("--example", choices=sorted(SHAPES), help="one of the four shapes of docs/billing.md")
    p.add_argument("--new-version", action="store_true", help="add a version to an existing plan")
    p.set_defaults(func=_run(cmd_plan))
    b.add_parser("plans", help="list plans and versions").set_defaults(func=_run(cmd_plans))
    s = b.add_parser("subscribe", help="subscribe a customer to a plan (version)")
    s.add_argument("customer")
    s.add_argument("plan", help="plan id (newest version) or version id such as hybrid@2")
    s.add_argument("--starts-at", help="RFC 3339; default now. A plan change must be a period boundary")
    s.set_defaults(func=_run(cmd_subscribe))
    g = b.add_parser("credit", help="grant prepaid or promotional credit")
    g.add_argument("customer")
    g.add_argument("amount", help="decimal amount in the customer's currency")
    g.add_argument("--promotional", action="store_true")
    g.add_argument("--priority", type=int, default=50, help="0-100, lower burns first")
    g.add_argument("--effective-at", help="RFC 3339; default now (a grant pays periods ending while in force)")
    g.add_argument("--expires-at", help="RFC 3339")
    g.set_defaults(func=_run(cmd_credit))
    v = b.add_parser("preview", help="the invoice preview of a customer's current (or given) period")
    v.add_argument("customer")
    v.add_argument("--at", help="an instant in the period (RFC 3339); default now")
    v.add_argument("--json", action="store_true", help="print the whole document")
    v.set_defaults(func=_run(cmd_preview))
    x = b.add_parser("close", help="finalize a period's invoice (once; after its grace period unless --force)")
    x.add_argument("customer")
    x.add_argument("--at", required=True, help="an instant in the period (RFC 3339)")
    x.add_argument("--force", action="store_true", help="close before the grace period is over")
    x.set_defaults(func=_run(cmd_close))
    r = b.add_parser("receipt", help="a signed value receipt: outcomes delivered in a period and their value")
    r.add_argument("customer")
    r.add_argument("--at", help="an instant in the period (RFC 3339); default now")
    r.set_defaults(func=_run(cmd_receipt), keys=True)
    i = b.add_parser("invoices", help="list finalized invoices")
    i.add_argument("--customer")
    i.set_defaults(func=_run(cmd_invoices))
    sh = b.add_parser("invoice", help="show a finalized invoice")
    sh.add_argument("invoice_id")
    sh.add_argument("--csv", action="store_true", help="CSV: one row per line and agent")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=_run(cmd_invoice))


def _run(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from authz.cli.admin import _ctx

        ctx = _ctx()
        # operator changes go through the service, which audits them (actor "cli") like /api/v1 does
        svc = BillingService(ctx.store.engine, ctx.keyring, audit=ctx.audit)  # type: ignore[attr-defined]
        if getattr(args, "keys", False):  # receipts are signed with the server's key (created on first use)
            ctx.keys.ensure()
            args.signer, args.issuer = ctx.keys.view.signer, ctx.settings.issuer
        try:
            return int(fn(svc, args))
        except (BillingError, MoneyError) as exc:
            where = f" ({exc.field})" if exc.field else ""
            print(f"authz: {exc.message}{where}; see authz billing {args.action} --help", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"authz: {exc}; see authz billing {args.action} --help", file=sys.stderr)
            return 1
        finally:
            ctx.audit.flush()

    return run


def cmd_customer(svc: BillingService, args: argparse.Namespace) -> int:
    c = svc.create_customer(
        actor=ACTOR,
        agents=args.agent,
        teams=args.team,
        id=args.id,
        name=args.name,
        currency=args.currency,
        timezone=args.timezone,
    )
    print(f"customer {c.id} ({c.name}, {c.currency}) with {len(args.agent) + len(args.team)} member(s)")
    return 0


def cmd_customers(svc: BillingService, args: argparse.Namespace) -> int:
    rows = [[c.id, c.name, c.currency, c.timezone, str(len(svc.store.members(c.id)))] for c in svc.store.customers()]
    if not rows:
        print("no customers (create one: authz billing customer ID --name N --currency USD)")
        return 0
    table([["ID", "NAME", "CURRENCY", "TIMEZONE", "MEMBERS"], *rows])
    return 0


def cmd_plan(svc: BillingService, args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            spec = json.loads(args.file.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {args.file}: {exc}") from None
    else:
        spec = SHAPES[args.example]
    v = (
        svc.add_version(args.id, spec, actor=ACTOR)
        if args.new_version
        else svc.create_plan(args.id, args.name or args.id, spec, actor=ACTOR)
    )
    print(f"plan version {v.id} ({v.spec.currency}, every {v.spec.interval}, {len(v.spec.components)} components)")
    return 0


def cmd_plans(svc: BillingService, args: argparse.Namespace) -> int:
    rows = [
        [v.id, p.name, v.spec.currency, v.spec.interval, ", ".join(c.id for c in v.spec.components)]
        for p, vs in svc.store.plans()
        for v in vs
    ]
    if not rows:
        print("no plans (create one: authz billing plan hybrid --example hybrid)")
        return 0
    table([["VERSION", "NAME", "CURRENCY", "INTERVAL", "COMPONENTS"], *rows])
    return 0


def cmd_subscribe(svc: BillingService, args: argparse.Namespace) -> int:
    start = parse_instant(args.starts_at) if args.starts_at else None
    sub = svc.subscribe(args.customer, args.plan, start, actor=ACTOR)
    print(f"subscription {sub.id}: {sub.customer_id} on {sub.plan_version_id} from {iso(sub.starts_at)}")
    return 0


def cmd_credit(svc: BillingService, args: argparse.Namespace) -> int:
    expires = parse_instant(args.expires_at) if args.expires_at else None
    effective = parse_instant(args.effective_at) if args.effective_at else None
    row = svc.grant(
        args.customer,
        args.amount,
        actor=ACTOR,
        category="promotional" if args.promotional else "prepaid",
        priority=args.priority,
        effective_at=effective,
        expires_at=expires,
    )
    print(f"credit {row.id}: {args.amount} {row.currency} ({row.category}, priority {row.priority})")
    return 0


def _cents(value: str | None) -> str:
    """Display only: exact decimals (model costs are pico-dollars) shown to the cent."""
    return "-" if value is None else f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"


def print_invoice(doc: dict[str, Any]) -> None:
    title = doc.get("number") or "preview"
    print(f"{title}  {doc['customer_id']}  {doc['period']['start']} .. {doc['period']['end']}  ({doc['currency']})")
    rows = [["LINE", "QUANTITY", "AMOUNT", "MODEL COST (USD)", "MARGIN"]]
    rows += [
        [line["label"], line["quantity"], line["amount"], _cents(line["cost_usd"]), _cents(line.get("margin"))]
        for line in doc["lines"]
    ]
    rows += [[f"credit {c['credit_id']}", "", "-" + c["amount"], "", ""] for c in doc["credits_applied"]]
    cost = doc["cost"]
    rows.append(["subtotal", "", doc["subtotal"], _cents(cost["model_cost_usd"]), _cents(cost["margin"])])
    rows.append(["TOTAL", "", doc["total"], "", ""])
    table(rows)
    print(f"as of {doc['as_of'] or 'no events yet'}; final after {doc['final_after']}")


def cmd_preview(svc: BillingService, args: argparse.Namespace) -> int:
    doc = svc.preview(args.customer, parse_instant(args.at) if args.at else None)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_invoice(doc)
    return 0


def cmd_close(svc: BillingService, args: argparse.Namespace) -> int:
    doc, created = svc.close(args.customer, parse_instant(args.at), force=args.force, actor=ACTOR)
    print(f"{'finalized' if created else 'already finalized'}: {doc['number']} ({doc['id']}) total {doc['total']}")
    return 0


def cmd_receipt(svc: BillingService, args: argparse.Namespace) -> int:
    token, claims = svc.value_receipt(
        args.customer, parse_instant(args.at) if args.at else None, args.signer, args.issuer, actor=ACTOR
    )
    print(json.dumps(claims, indent=2))
    print(token)
    return 0


def cmd_invoices(svc: BillingService, args: argparse.Namespace) -> int:
    docs = svc.invoices(args.customer)
    if not docs:
        print("no finalized invoices")
        return 0
    rows = [
        [d["number"], d["id"], d["customer_id"], d["period"]["start"], d["total"] + " " + d["currency"]] for d in docs
    ]
    table([["NUMBER", "ID", "CUSTOMER", "PERIOD", "TOTAL"], *rows])
    return 0


def cmd_invoice(svc: BillingService, args: argparse.Namespace) -> int:
    doc = svc.invoice(args.invoice_id)
    if args.csv:
        sys.stdout.write(invoice_csv(doc))
    elif args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_invoice(doc)
    return 0
