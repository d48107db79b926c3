"""``authz serve``, ``authz migrate`` and ``authz demo``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from authz.cli.database import migrate_db
from authz.core.settings import Settings, check_safe


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the authorization server",
        description="Run the authorization server (applies pending schema migrations first unless --no-migrate).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9100, help="port to bind (default 9100)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--dev", action="store_true", help="development mode: sign in the dev user, consent automatically")
    p.add_argument("--no-migrate", action="store_true", help="do not apply schema migrations on start")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--access-log",
        action="store_true",
        help="log every request line (credential query parameters such as access_token are redacted)",
    )
    p.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="apply or inspect schema migrations", description="Alembic migrations.")
    m.add_argument("action", choices=["upgrade", "downgrade", "current"], nargs="?", default="upgrade")
    m.add_argument("revision", nargs="?", default=None, help="target revision (upgrade: head; downgrade: required)")
    m.set_defaults(func=cmd_migrate)

    c = sub.add_parser("config-docs", help="print the settings reference (docs/configuration.md)")
    c.set_defaults(func=cmd_config_docs)

    d = sub.add_parser(
        "demo",
        help="start the AS and a protected demo MCP server on loopback",
        description="Development mode AS + demo MCP server; prints what to try.",
    )
    d.add_argument("--port", type=int, default=9100, help="authorization server port (default 9100)")
    d.add_argument("--mcp-port", type=int, default=9200, help="demo MCP server port (default 9200)")
    d.set_defaults(func=cmd_demo)


def settings_from_env(**overrides: Any) -> Settings:
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authz.core.logredact import uvicorn_log_config

    if args.dev:
        os.environ["AUTHZ_DEV_MODE"] = "1"
    settings = settings_from_env()
    check_safe(settings)
    if not args.no_migrate:
        migrate_db(settings)
    print(
        f"authz: issuer {settings.issuer} on http://{args.host}:{args.port}"
        f"{' (development mode)' if settings.dev_mode else ''}",
        file=sys.stderr,
    )
    uvicorn.run(
        "authz.asgi:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=uvicorn_log_config(),  # redacts credential query parameters in the access log
        access_log=args.access_log,
        proxy_headers=settings.trust_forwarded_proto,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import migrations

    settings = settings_from_env()
    if args.action == "current":
        print(migrations.current(settings.sqlalchemy_url) or "(empty database)")
    elif args.action == "downgrade":
        if not args.revision:
            raise SystemExit("authz migrate downgrade needs a target revision (e.g. base)")
        migrations.downgrade(settings.sqlalchemy_url, args.revision)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings.sqlalchemy_url, args.revision or "head")
    return 0


def cmd_config_docs(_args: argparse.Namespace) -> int:
    from authz.core.settings_doc import render

    print(render(), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from authz.cli.demo import run_demo

    return run_demo(args.port, args.mcp_port)
