"""Administration subcommands: clients, resources, users, keys, audit."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from authz.app import build_context
from authz.cli.starter import next_steps
from authz.compliance.vault import SubjectVault
from authz.context import Context
from authz.core.crypto import generate_kek
from authz.core.settings import Settings
from authz.identity.registry import AUTH_METHODS, register_client, register_resource
from authz.identity.users import create_user, set_groups


def register(sub: Any) -> None:
    c = sub.add_parser("clients", help="manage OAuth clients").add_subparsers(dest="action", required=True)
    add = c.add_parser("add", help="register a client (a generated secret is printed once)")
    add.add_argument("--client-id", help="the client_id (default: generated)")
    add.add_argument("--name", default="", help="display name shown on the consent page")
    add.add_argument(
        "--auth-method",
        choices=AUTH_METHODS,
        default="client_secret_basic",
        help="token endpoint authentication (none = public client with PKCE)",
    )
    add.add_argument("--public", action="store_true", help="shorthand for --auth-method none")
    add.add_argument("--redirect-uri", action="append", default=[], help="allowed redirect URI (repeatable)")
    add.add_argument(
        "--grant-type",
        action="append",
        default=[],
        help="allowed grant type (repeatable; "
        "default authorization_code + refresh_token, or client_credentials without redirect URIs)",
    )
    add.add_argument("--scope", default="", help="space-separated scopes the client may ever get (default: any)")
    add.add_argument(
        "--resource",
        action="append",
        default=None,
        help="MCP server URI the client may use (repeatable; default: any registered)",
    )
    add.add_argument("--jwks-file", help="JSON file with the client's public JWK Set (private_key_jwt)")
    add.add_argument("--jwks-uri", help="URL of the client's JWK Set (private_key_jwt)")
    add.add_argument(
        "--dpop-bound",
        action="store_true",
        help="the client must present a DPoP proof with every token request (RFC 9449 dpop_bound_access_tokens)",
    )
    add.set_defaults(func=cmd_clients_add)
    ls = c.add_parser("list", help="list clients")
    ls.set_defaults(func=cmd_clients_list)
    for name, helptext in (
        ("remove", "delete a client"),
        ("disable", "disable a client (its tokens stop working)"),
        ("enable", "re-enable a client (old tokens stay dead)"),
    ):
        p = c.add_parser(name, help=helptext)
        p.add_argument("client_id")
        p.set_defaults(func=cmd_clients_state, action_name=name)

    r = sub.add_parser("resources", help="manage protected resources (MCP servers)").add_subparsers(
        dest="action", required=True
    )
    radd = r.add_parser("add", help="register an MCP server; prints its introspection credentials once")
    radd.add_argument("uri", help="canonical resource URI, e.g. https://mcp.example.com/mcp")
    radd.add_argument("--scopes", default="", help="comma- or space-separated scopes the server offers")
    radd.add_argument("--name", default="", help="display name (also names the starter policy's file)")
    radd.add_argument(
        "--policy-dir",
        type=Path,
        help="also write a starter policy for this server into this policy directory (authz policy starter); "
        "then run the AS with AUTHZ_POLICIES=DIR",
    )
    radd.set_defaults(func=cmd_resources_add)
    r.add_parser("list", help="list resources").set_defaults(func=cmd_resources_list)
    rrm = r.add_parser("remove", help="remove a resource")
    rrm.add_argument("uri")
    rrm.set_defaults(func=cmd_resources_remove)

    u = sub.add_parser("users", help="manage local users").add_subparsers(dest="action", required=True)
    uadd = u.add_parser("add", help="add a user (password read from the terminal or --password-stdin)")
    uadd.add_argument("username")
    uadd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    uadd.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="GROUP",
        help='a group the user belongs to (repeatable); scope policies see it as Authz::Group::"GROUP"',
    )
    uadd.add_argument("--email", help="kept in the user's profile, encrypted with the user's own key")
    uadd.add_argument("--name", help="full name, kept in the encrypted profile too")
    uadd.set_defaults(func=cmd_users_add)
    u.add_parser("list", help="list users").set_defaults(func=cmd_users_list)
    ugroups = u.add_parser("set-groups", help="replace a user's groups (what scope policies see as Authz::Group)")
    ugroups.add_argument("username")
    ugroups.add_argument(
        "--group", action="append", default=[], metavar="GROUP", help="a group (repeatable; none clears)"
    )
    ugroups.set_defaults(func=cmd_users_set_groups)

    k = sub.add_parser("keys", help="signing keys").add_subparsers(dest="action", required=True)
    k.add_parser("list", help="list signing keys and their status").set_defaults(func=cmd_keys_list)
    k.add_parser("rotate", help="promote the published next key to signing; retire the old one").set_defaults(
        func=cmd_keys_rotate
    )
    k.add_parser("generate-kek", help="print a new key-encryption key for AUTHZ_KEY_ENCRYPTION_KEY").set_defaults(
        func=lambda _a: print(generate_kek())
    )


def _vault(ctx: Context) -> SubjectVault:
    return SubjectVault(ctx.store.engine, ctx.keyring)  # type: ignore[attr-defined]


def _ctx() -> Context:
    from authz.cli.database import migrate_db

    settings = Settings()
    migrate_db(settings)
    return build_context(settings)


def cmd_clients_add(args: argparse.Namespace) -> int:
    ctx = _ctx()
    method = "none" if args.public else args.auth_method
    grants = args.grant_type or (
        ["authorization_code", "refresh_token"] if args.redirect_uri else ["client_credentials"]
    )
    jwks = json.loads(open(args.jwks_file).read()) if args.jwks_file else None
    try:
        reg = register_client(
            ctx.store,
            ctx.keyring,
            client_id=args.client_id,
            name=args.name,
            auth_method=method,
            redirect_uris=args.redirect_uri,
            grant_types=grants,
            scope=args.scope,
            resources=args.resource,
            jwks=jwks,
            jwks_uri=args.jwks_uri,
            application_type="native" if method == "none" else "web",
            extra={"dpop_bound_access_tokens": True} if args.dpop_bound else None,
        )
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx.audit.record("client.created", client_id=reg.client_id, auth_method=method)
    ctx.audit.flush()
    print(f"client_id:     {reg.client_id}")
    if reg.client_secret:
        print(f"client_secret: {reg.client_secret}   (shown once: store it now)")
    return 0


def cmd_clients_list(_args: argparse.Namespace) -> int:
    rows = _ctx().store.list_clients()
    print(f"{'CLIENT ID':40} {'KIND':16} {'AUTH':20} {'STATUS':8} GRANTS")
    for c in rows:
        grants = ",".join(c.grant_types)
        print(f"{c.client_id[:40]:40} {c.kind:16} {c.token_endpoint_auth_method:20} {c.status:8} {grants}")
    return 0


def cmd_clients_state(args: argparse.Namespace) -> int:
    ctx = _ctx()
    if args.action_name == "remove":
        ok = ctx.store.delete_client(args.client_id)
    else:
        ok = ctx.store.set_client_status(args.client_id, "disabled" if args.action_name == "disable" else "active")
        if ok and args.action_name == "disable":
            ctx.revocations.revoke("client", args.client_id, int(time.time()) + 86400)
    if not ok:
        print(f"authz: no client {args.client_id!r}", file=sys.stderr)
        return 1
    ctx.audit.record(
        f"client.{args.action_name}d" if args.action_name != "remove" else "client.removed", client_id=args.client_id
    )
    ctx.audit.flush()
    return 0


def cmd_resources_add(args: argparse.Namespace) -> int:
    ctx = _ctx()
    scopes = [s for s in args.scopes.replace(",", " ").split() if s]
    try:
        reg = register_resource(ctx.store, ctx.store, ctx.keyring, args.uri, scopes, args.name)
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx.audit.record("resource.created", resource=args.uri, client_id=reg.client_id, scopes=scopes)
    ctx.audit.flush()
    print(f"resource:      {args.uri}")
    print(f"scopes:        {' '.join(scopes) or '(none)'}")
    print(f"client_id:     {reg.client_id}      (introspection credentials of this MCP server)")
    print(f"client_secret: {reg.client_secret}   (shown once: store it now)")
    if args.policy_dir is not None and scopes:
        from policies import PolicyError
        from policies.starter import server_slug, write_starter

        try:
            written = write_starter(args.policy_dir, args.uri, scopes, server_slug(args.uri, args.name))
        except FileExistsError as exc:
            print(f"authz: {exc}; the resource is registered", file=sys.stderr)
            return 1
        except PolicyError as exc:
            print(f"authz: {args.policy_dir} does not load with the starter policy: {exc}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path}")
    for line in next_steps(ctx.settings, args.uri, scopes, args.policy_dir):
        print(line)
    return 0


def cmd_resources_list(_args: argparse.Namespace) -> int:
    for r in _ctx().store.list_resources():
        print(f"{r.uri:50} {r.status:8} {' '.join(r.scopes)}")
    return 0


def cmd_resources_remove(args: argparse.Namespace) -> int:
    ctx = _ctx()
    if not ctx.store.delete_resource(args.uri):
        print(f"authz: no resource {args.uri!r}", file=sys.stderr)
        return 1
    ctx.audit.record("resource.removed", resource=args.uri)
    ctx.audit.flush()
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    ctx = _ctx()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    if len(password) < 8:
        print("authz: passwords have at least 8 characters", file=sys.stderr)
        return 1
    try:
        profile = {"email": args.email or "", "name": args.name or ""}
        user = create_user(ctx.store, args.username, password, args.group, profiles=_vault(ctx), profile=profile)
    except ValueError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx.audit.record("user.created", subject=user.id, username=user.username, groups=user.groups or None)
    ctx.audit.flush()
    groups = f" groups {','.join(user.groups)}" if user.groups else ""
    print(f"user {user.username} ({user.id}){groups}")
    return 0


def cmd_users_set_groups(args: argparse.Namespace) -> int:
    ctx = _ctx()
    try:
        user = set_groups(ctx.store, args.username, args.group)
    except (LookupError, ValueError) as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    ctx.audit.record("user.groups_changed", subject=user.id, username=user.username, groups=user.groups)
    ctx.audit.flush()
    print(f"user {user.username}: groups {','.join(user.groups) or '(none)'}")
    return 0


def cmd_users_list(_args: argparse.Namespace) -> int:
    for u in _ctx().store.list_users():
        print(f"{u.username:30} {u.id} {','.join(u.groups or ()) or '-':20} {'disabled' if u.disabled else ''}")
    return 0


def cmd_keys_list(_args: argparse.Namespace) -> int:
    ctx = _ctx()
    ctx.keys.ensure()
    for k in ctx.store.list_keys():
        until = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.publish_until)) if k.publish_until else ""
        print(f"{k.kid:45} {k.alg:6} {k.status:8} {until}")
    return 0


def cmd_keys_rotate(_args: argparse.Namespace) -> int:
    ctx = _ctx()
    ctx.keys.ensure()
    retire_after = ctx.settings.access_token_ttl + ctx.settings.key_rotation_overlap
    active, nxt = ctx.keys.rotate(retire_after)
    ctx.audit.operator_change("key", "rotated", actor="cli", target=active, kid=active, next_kid=nxt)
    ctx.audit.flush()
    print(f"signing with {active}; next key {nxt} published")
    return 0
