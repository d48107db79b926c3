"""``authz licenses``: products, license policies, licenses, machines, files and webhooks.

The commands call the same service as the REST API (``authz.licensing.service``), so the rules, the
conflicts and the audit trail are the same; the audit ``actor`` is ``cli``. A key is printed once,
by ``create``; nothing stores or logs it. A running server sees changes within ``cache_staleness``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authz.cli.output import table
from authz.context import Context
from authz.identity.agents.errors import AgentError, Invalid
from authz.licensing.files import iso
from authz.licensing.service import STATUSES, LicenseRefused, Licensing
from authz.licensing.sweeper import sweep
from authz.licensing.views import license_json, machine_json

ACTOR = "cli"


def register(sub: Any) -> None:
    top = sub.add_parser(
        "licenses", help="license keys: products, policies, licenses, machines, offline files",
        description="License keys (docs/licensing.md): create products, license policies and licenses; "
        "inspect machines; suspend, reinstate or revoke; check out signed offline license files.",
    )  # fmt: skip
    a = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    prod = a.add_parser("products", help="add or list products").add_subparsers(dest="sub", required=True)
    p = prod.add_parser("add", help="add a product", description="Add a product; clients name its code in a scope.")
    p.add_argument("code", help="short name: 1-64 of a-z 0-9 _ -")
    p.add_argument("--name", help="display name (default: the code)")
    p.set_defaults(func=_run(cmd_product_add))
    prod.add_parser("list", help="list products").set_defaults(func=_run(cmd_product_list))

    pol = a.add_parser("policies", help="add or list license policies").add_subparsers(dest="sub", required=True)
    p = pol.add_parser("add", help="add a license policy", description="Add a license policy to a product.")
    p.add_argument("--product", required=True, help="product id or code")
    p.add_argument("--name", required=True)
    p.add_argument("--duration", type=int, help="license lifetime in seconds (default: perpetual)")
    p.add_argument("--expiration", choices=["restrict", "maintain"], default="restrict",
                   help="restrict: expired licenses stop validating; maintain: they stay valid")  # fmt: skip
    p.add_argument("--entitlement", action="append", default=[], help="a feature name (repeatable)")
    p.add_argument("--max-machines", type=int, help="machine limit (default: unlimited)")
    p.add_argument("--heartbeat-interval", type=int, help="seconds machines must heartbeat within (>= 60)")
    p.add_argument("--cull", choices=["deactivate_dead", "keep_dead"], default="deactivate_dead")
    p.add_argument("--resurrection-window", type=int, default=0, help="seconds after death a heartbeat revives")
    p.add_argument("--checkout-ttl", type=int, help="default license file lifetime in seconds")
    p.set_defaults(func=_run(cmd_policy_add))
    pol.add_parser("list", help="list license policies").set_defaults(func=_run(cmd_policy_list))

    p = a.add_parser("create", help="create a license (prints its key once)", description="Create a license.")
    p.add_argument("--policy", required=True, help="license policy id")
    p.add_argument("--name")
    p.add_argument("--expires-at", type=int, help="Unix time (default: now + the policy's duration)")
    p.add_argument("--entitlement", action="append", default=[], help="an extra feature (repeatable)")
    p.add_argument("--max-machines", type=int, help="overrides the policy's limit")
    p.add_argument("--owner-user", help="user id of the owner")
    p.add_argument("--customer", help="the paying customer's id")
    p.set_defaults(func=_run(cmd_create))
    p = a.add_parser("list", help="list licenses")
    p.add_argument("--product", help="product id or code")
    p.add_argument("--status", choices=STATUSES)
    p.set_defaults(func=_run(cmd_list))
    p = a.add_parser("show", help="show a license and its machines")
    p.add_argument("license_id")
    p.set_defaults(func=_run(cmd_show))
    for verb, status, text in (
        ("suspend", "suspended", "suspend a license (and the agents it pays for)"),
        ("reinstate", "active", "reinstate a suspended license"),
        ("revoke", "revoked", "revoke a license for good (its agents are suspended)"),
    ):
        p = a.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("license_id")
        p.add_argument("--reason", help="recorded in the audit trail")
        p.set_defaults(func=_run(cmd_status), status=status)
    p = a.add_parser("attach-agent", help="link an agent to the license that pays for it")
    p.add_argument("license_id")
    p.add_argument("agent_id")
    p.set_defaults(func=_run(cmd_attach))
    p = a.add_parser("machines", help="list machines with their heartbeat status")
    p.add_argument("--license", help="only this license's machines")
    p.set_defaults(func=_run(cmd_machines))
    p = a.add_parser("deactivate", help="deactivate a machine (frees its seat)")
    p.add_argument("machine_id")
    p.set_defaults(func=_run(cmd_deactivate))
    p = a.add_parser(
        "checkout",
        help="write a signed license file (base64+ed25519)",
        description="Check out a signed offline license file; with --fingerprint a machine file.",
    )
    p.add_argument("license_id")
    p.add_argument("--fingerprint", help="an activated machine's fingerprint")
    p.add_argument("--ttl", type=int, help="seconds (3600 to 1 year; default: the policy's checkout ttl)")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.set_defaults(func=_run(cmd_checkout))
    a.add_parser("jwks", help="print the public keys that sign answers and files").set_defaults(func=_run(cmd_jwks))
    a.add_parser("sweep", help="run one sweep now (dead machines, culls, expiring licenses)").set_defaults(
        func=_run(cmd_sweep)
    )
    wh = a.add_parser("webhooks", help="licensing webhook endpoints").add_subparsers(dest="sub", required=True)
    p = wh.add_parser("add", help="add an endpoint (prints its secret once)")
    p.add_argument("url")
    p.set_defaults(func=_run(cmd_webhook_add))
    wh.add_parser("list", help="list endpoints").set_defaults(func=_run(cmd_webhook_list))
    p = wh.add_parser("delete", help="delete an endpoint")
    p.add_argument("webhook_id")
    p.set_defaults(func=_run(cmd_webhook_delete))


def _run(fn: Callable[[Licensing, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from authz import services
        from authz.cli.admin import _ctx

        ctx: Context = _ctx()
        svc = services.licensing_service(ctx, ctx.store.engine)  # type: ignore[attr-defined]
        try:
            return fn(svc, args)
        except Invalid as exc:
            for field, message in exc.errors:
                print(f"authz: {field.replace('_', '-')}: {message} (see: authz licenses {args.action} --help)",
                      file=sys.stderr)  # fmt: skip
            return 1
        except (AgentError, ValueError) as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        except LicenseRefused as exc:
            print(f"authz: {exc.detail} ({exc.code})", file=sys.stderr)
            return 1
        finally:
            ctx.audit.flush()

    return run


def cmd_product_add(svc: Licensing, args: argparse.Namespace) -> int:
    row = svc.create_product(code=args.code, name=args.name or args.code, actor=ACTOR)
    print(f"product_id: {row.id}\ncode: {row.code}")
    return 0


def cmd_product_list(svc: Licensing, args: argparse.Namespace) -> int:
    rows = svc.store.products()
    if not rows:
        print("no products")
        return 0
    table([["ID", "CODE", "NAME"], *([r.id, r.code, r.name] for r in rows)])
    return 0


def cmd_policy_add(svc: Licensing, args: argparse.Namespace) -> int:
    row = svc.create_policy(
        product=args.product, actor=ACTOR, name=args.name, duration=args.duration,
        expiration_strategy=args.expiration, entitlements=args.entitlement, max_machines=args.max_machines,
        heartbeat_interval=args.heartbeat_interval, cull_strategy=args.cull,
        resurrection_window=args.resurrection_window, checkout_ttl=args.checkout_ttl,
    )  # fmt: skip
    print(f"policy_id: {row.id}\nproduct_id: {row.product_id}")
    return 0


def cmd_policy_list(svc: Licensing, args: argparse.Namespace) -> int:
    rows = svc.store.policies()
    if not rows:
        print("no license policies")
        return 0
    head = ["ID", "PRODUCT", "NAME", "MACHINES", "HEARTBEAT", "ENTITLEMENTS"]
    table([head, *([r.id, r.product_id, r.name, str(r.max_machines or "any"), str(r.heartbeat_interval or "-"),
                     ",".join(r.entitlements) or "-"] for r in rows)])  # fmt: skip
    return 0


def cmd_create(svc: Licensing, args: argparse.Namespace) -> int:
    row, key = svc.create_license(
        policy=args.policy, actor=ACTOR, name=args.name, expires_at=args.expires_at, entitlements=args.entitlement,
        max_machines=args.max_machines, owner_user_id=args.owner_user, owner_customer=args.customer,
    )  # fmt: skip
    print(
        f"license_id: {row.id}\nkey: {key}  (shown once: give it to the customer)\n"
        f"expires: {iso(row.expires_at) or 'never'}"
    )
    return 0


def cmd_list(svc: Licensing, args: argparse.Namespace) -> int:
    product = svc.store.product(args.product) if args.product else None
    if args.product and product is None:
        print(f"authz: no product {args.product!r} (see: authz licenses products list)", file=sys.stderr)
        return 1
    rows = svc.store.licenses(product_id=product.id if product else None, status=args.status, owner=None,
                              after=None, limit=10_000)  # fmt: skip
    if not rows:
        print("no licenses")
        return 0
    table([["ID", "NAME", "STATUS", "PRODUCT", "EXPIRES"],
            *([r.id, r.name, r.status, r.product_id, iso(r.expires_at) or "never"] for r in rows)])  # fmt: skip
    return 0


def cmd_show(svc: Licensing, args: argparse.Namespace) -> int:
    print(json.dumps(license_json(svc.view(args.license_id), svc.clock(), machines=True), indent=2))
    return 0


def cmd_status(svc: Licensing, args: argparse.Namespace) -> int:
    row = svc.change_status(args.license_id, args.status, actor=ACTOR, reason=args.reason)
    print(f"{row.id}: {row.status}")
    return 0


def cmd_attach(svc: Licensing, args: argparse.Namespace) -> int:
    svc.attach_agent(args.license_id, args.agent_id, actor=ACTOR)
    print(f"{args.agent_id} is paid for by {args.license_id}")
    return 0


def cmd_machines(svc: Licensing, args: argparse.Namespace) -> int:
    rows = svc.store.machines(args.license)
    if not rows:
        print("no machines")
        return 0
    out = [["ID", "LICENSE", "FINGERPRINT", "HEARTBEAT", "LAST HEARTBEAT"]]
    for r in rows:
        view = svc.view(r.license_id)
        for m in (m for m in view.machines if m.id == r.id):
            j = machine_json(m, view, svc.clock())
            out.append([m.id, view.id, m.fingerprint, j["heartbeat_status"], j["last_heartbeat_at"] or "never"])
    table(out)
    return 0


def cmd_deactivate(svc: Licensing, args: argparse.Namespace) -> int:
    row = svc.store.machine(args.machine_id)
    if row is None:
        print(f"authz: no machine {args.machine_id!r} (see: authz licenses machines)", file=sys.stderr)
        return 1
    svc.deactivate(row.license_id, row.id, actor=ACTOR)
    print(f"{row.id}: deactivated")
    return 0


def cmd_checkout(svc: Licensing, args: argparse.Namespace) -> int:
    view = svc.view(args.license_id)
    machine = None
    if args.fingerprint:
        machine = next((m for m in view.live_machines(svc.clock()) if m.fingerprint == args.fingerprint), None)
        if machine is None:
            print(f"authz: no machine of {view.id} has that fingerprint (see: authz licenses machines "
                  f"--license {view.id})", file=sys.stderr)  # fmt: skip
            return 1
    out = svc.checkout(view, machine=machine, ttl=args.ttl, license_key=None, actor=ACTOR)
    if args.output:
        Path(args.output).write_text(out["certificate"])
        print(f"wrote {args.output} ({out['type']} file, expires {out['expiry']})")
    else:
        sys.stdout.write(out["certificate"])
    return 0


def cmd_jwks(svc: Licensing, args: argparse.Namespace) -> int:
    print(json.dumps(svc.keys.jwks(), indent=2))
    return 0


def cmd_sweep(svc: Licensing, args: argparse.Namespace) -> int:
    s = sweep(svc, expiring_within=7 * 86400)
    print(f"dead: {s.dead}  culled: {s.culled}  expiring: {s.expiring}")
    return 0


def cmd_webhook_add(svc: Licensing, args: argparse.Namespace) -> int:
    from authz.core.fetch import FetchError, check_url

    try:
        check_url(args.url)
    except FetchError as exc:
        print(f"authz: not an allowed webhook URL ({exc}); use an https URL", file=sys.stderr)
        return 1
    row, secret = svc.webhooks.add(args.url)
    svc.audit.operator_change("license_webhook", "created", actor=ACTOR, target=row.id)
    print(f"webhook_id: {row.id}\nsecret: {secret}  (shown once)")
    return 0


def cmd_webhook_list(svc: Licensing, args: argparse.Namespace) -> int:
    rows = svc.webhooks.list()
    if not rows:
        print("no licensing webhooks")
        return 0
    table([["ID", "URL"], *([r.id, r.url] for r in rows)])
    return 0


def cmd_webhook_delete(svc: Licensing, args: argparse.Namespace) -> int:
    if not svc.webhooks.delete(args.webhook_id):
        print(f"authz: no webhook {args.webhook_id!r} (see: authz licenses webhooks list)", file=sys.stderr)
        return 1
    svc.audit.operator_change("license_webhook", "deleted", actor=ACTOR, target=args.webhook_id)
    print(f"{args.webhook_id}: deleted")
    return 0
