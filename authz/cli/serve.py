"""``authz serve``, ``authz migrate`` and ``authz demo``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from authz import preflight
from authz.cli import asgi_server
from authz.cli.database import migrate_db
from authz.core.settings import Settings, check_safe, issuer_configured, record_running_issuer


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the authorization server",
        description="Run the authorization server (applies pending schema migrations first unless --no-migrate).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=9100,
        help="port to bind (default 9100); without AUTHZ_ISSUER the issuer is http://127.0.0.1:PORT",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--server",
        choices=asgi_server.SERVERS,
        default=None,
        help="the HTTP server: uvicorn or granian (default: AUTHZ_SERVER, else uvicorn)",
    )
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
        description="Development mode AS + demo MCP server on loopback; prints what to try. State is kept in "
        "AUTHZ_DATA_DIR/demo (default .authz/demo) between runs (--reset starts afresh). Ctrl-C, SIGTERM or SIGHUP "
        "stops both servers.",
    )
    d.add_argument("--port", type=int, default=9100, help="authorization server port (default 9100)")
    d.add_argument("--mcp-port", type=int, default=9200, help="demo MCP server port (default 9200)")
    d.add_argument(
        "--reset",
        action="store_true",
        help="delete the demo's state first (AUTHZ_DATA_DIR/demo, default .authz/demo: database, keys, agents)",
    )
    d.set_defaults(func=cmd_demo)


def settings_from_env(**overrides: Any) -> Settings:
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.dev:
        os.environ["AUTHZ_DEV_MODE"] = "1"
    if args.server:  # the workers read the same settings
        os.environ["AUTHZ_SERVER"] = args.server
    if not issuer_configured():  # the development default follows the port it serves on
        os.environ["AUTHZ_ISSUER"] = f"http://127.0.0.1:{args.port}"
        record_running_issuer(Settings().data_dir, os.environ["AUTHZ_ISSUER"])
    settings = settings_from_env()
    check_safe(settings)
    if settings.server == "granian" and not preflight.installed("granian"):
        raise preflight.needs_extra("granian", "`authz serve --server granian` (AUTHZ_SERVER=granian)")
    if not args.no_migrate:
        migrate_db(settings)
    preflight.require_database(settings)
    preflight.verify_keys(settings)
    print(
        f"authz: issuer {settings.issuer} on http://{args.host}:{args.port}"
        f"{' (development mode)' if settings.dev_mode else ''}; policies: {preflight.policy_line(settings)}"
        f"; server: {settings.server}",
        file=sys.stderr,
    )
    asgi_server.run(
        settings.server,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
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
        preflight.kek_text(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings.sqlalchemy_url, args.revision or "head")
        print(f"database at revision {migrations.current(settings.sqlalchemy_url)}")
    return 0


METERING_HEADER = """
## Metering

Read from the environment only (`AUTHZ_METERING_<NAME>`), by every process that ingests or flushes
usage events (see [metering.md](metering.md)).

| Environment variable | Default | Description |
|---|---|---|
"""


def cmd_config_docs(_args: argparse.Namespace) -> int:
    from authz.core.settings_doc import render
    from authz.metering.config import MeteringConfig

    print(render(), end="")
    print(METERING_HEADER + "\n".join(MeteringConfig.doc_rows()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from authz.cli.demo import run_demo

    return run_demo(args.port, args.mcp_port, reset=args.reset)
